"""The PostgreSQL statements behind the user's queries (runs, promises, logs); the twin of
``store/duckdb/queries.py``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from flovyn_nb.model import (
    ErrorInfo,
    EventInfo,
    LogEntry,
    PromiseInfo,
    PromiseStatus,
    RunInfo,
    RunStatus,
)
from flovyn_nb.store.postgres.ops import Con, to_ts
from flovyn_nb.store.runquery import RunPage, RunQuery

# The columns every RunInfo is read from (one list: get_run, list_runs, query_runs).
RUN_INFO_COLUMNS = (
    "id, workflow_id, kind, status, input, output, error, parent_id, owner, created_at, "
    "updated_at, queue"
)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _error(data: Any) -> ErrorInfo | None:
    return None if data is None else ErrorInfo.model_validate(data)


def get_run(con: Con, workflow_id: str, *, with_events: bool = True) -> RunInfo | None:
    row = con.execute(
        f"SELECT {RUN_INFO_COLUMNS} FROM workflow_executions WHERE workflow_id = %s OR id = %s "
        "ORDER BY workflow_id = %s DESC LIMIT 1",
        [workflow_id, workflow_id, workflow_id],
    ).fetchone()
    if row is None:
        return None
    events: list[EventInfo] = []
    if with_events:
        events = [
            EventInfo(seq=r[0], type=r[1], payload=r[2], ts=r[3].astimezone(UTC))
            for r in con.execute(
                "SELECT seq, type, payload, ts FROM events WHERE execution_id = %s ORDER BY seq",
                [row[0]],
            ).fetchall()
        ]
    return _run_info(row, events)


def _run_info(row: Sequence[Any], events: list[EventInfo]) -> RunInfo:
    return RunInfo(
        execution_id=row[0],
        workflow_id=row[1],
        kind=row[2],
        status=RunStatus(row[3]),
        input=row[4],
        output=row[5],
        error=_error(row[6]),
        parent_id=row[7],
        owner=row[8],
        created_at=row[9].astimezone(UTC),
        updated_at=row[10].astimezone(UTC),
        queue=row[11],
        events=events,
    )


def list_runs(
    con: Con, *, statuses: Iterable[str] = (), kind: str | None = None, limit: int | None = None
) -> list[RunInfo]:
    clauses: list[str] = []
    params: list[Any] = []
    chosen = list(statuses)
    if chosen:
        clauses.append("status = ANY(%s)")
        params.append(chosen)
    if kind is not None:
        clauses.append("kind = %s")
        params.append(kind)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    tail = f" LIMIT {int(limit)}" if limit else ""
    rows = con.execute(
        f"SELECT {RUN_INFO_COLUMNS} FROM workflow_executions{where} ORDER BY created_at DESC{tail}",
        params,
    ).fetchall()
    return [_run_info(r, []) for r in rows]


def source_hashes(
    con: Con, *, kind: str, statuses: Iterable[str] = ()
) -> list[tuple[str, str | None]]:
    chosen = list(statuses)
    where = "kind = %s" + (" AND status = ANY(%s)" if chosen else "")
    rows = con.execute(
        f"SELECT workflow_id, source_hash FROM workflow_executions WHERE {where} "
        "ORDER BY created_at DESC",
        [kind, *([chosen] if chosen else [])],
    ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def promises(
    con: Con, *, workflow_id: str | None = None, pending_only: bool = True
) -> list[PromiseInfo]:
    clauses: list[str] = []
    params: list[Any] = []
    if pending_only:
        clauses.append("p.status = 'PENDING'")
        clauses.append("r.status IN ('RUNNING', 'WAITING', 'PENDING')")
    if workflow_id is not None:
        clauses.append("r.workflow_id = %s")
        params.append(workflow_id)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = con.execute(
        "SELECT r.workflow_id, p.execution_id, p.id, p.name, p.status, p.created_at, "
        "p.timeout_at, p.schema, p.value, p.error, p.resolved_at, p.resolved_by "
        f"FROM promises p JOIN workflow_executions r ON r.id = p.execution_id{where} "
        "ORDER BY p.created_at, p.id",
        params,
    ).fetchall()
    return [
        PromiseInfo(
            workflow_id=r[0],
            execution_id=r[1],
            promise_id=r[2],
            name=r[3],
            status=PromiseStatus(r[4]),
            created_at=r[5].astimezone(UTC),
            timeout_at=_utc(r[6]),
            schema=r[7],
            value=r[8],
            error=r[9],
            resolved_at=_utc(r[10]),
            resolved_by=r[11],
        )
        for r in rows
    ]


def logs(con: Con, execution_id: str, *, since_ts: float | None = None) -> list[LogEntry]:
    params: list[Any] = [execution_id]
    extra = ""
    if since_ts is not None:
        extra = " AND ts > %s"
        params.append(to_ts(since_ts))
    rows = con.execute(
        "SELECT execution_id, task_execution_id, ts, stream, level, message FROM logs "
        f"WHERE execution_id = %s{extra} ORDER BY ts, id",
        params,
    ).fetchall()
    return [
        LogEntry(
            execution_id=r[0],
            task_execution_id=r[1],
            ts=r[2].astimezone(UTC),
            stream=r[3],
            level=r[4],
            message=r[5],
        )
        for r in rows
    ]


# -- a page of runs (``Store.query_runs``) ------------------------------------------------------------------

# Sort keys as SQL expressions (never user text in the statement: only these).
_ORDER = {
    "created": "created_at",
    "updated": "updated_at",
    "duration": "(updated_at - created_at)",
    "status": "status",
    "workflow_id": "workflow_id",
    "kind": "kind",
}


def _filters(query: RunQuery, *, with_status: bool) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if with_status and query.statuses:
        clauses.append("status = ANY(%s)")
        params.append(list(query.statuses))
    if query.kind is not None:
        clauses.append("kind = %s")
        params.append(query.kind)
    if query.search:
        # Substring, case-insensitive; LIKE's own wildcards in the text are literal.
        text = query.search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{text}%"
        clauses.append("(lower(workflow_id) LIKE %s OR lower(id) LIKE %s OR lower(kind) LIKE %s)")
        params.extend([pattern, pattern, pattern])
    if query.created_from is not None:
        clauses.append("created_at >= %s")
        params.append(to_ts(query.created_from))
    if query.created_to is not None:
        clauses.append("created_at < %s")
        params.append(to_ts(query.created_to))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def query_runs(con: Con, query: RunQuery) -> RunPage:
    """A checked query's page (see ``store/runquery.py`` for the semantics)."""
    where, params = _filters(query, with_status=True)
    direction = "DESC" if query.descending else "ASC"
    rows = con.execute(
        f"SELECT {RUN_INFO_COLUMNS} FROM workflow_executions{where} "
        f"ORDER BY {_ORDER[query.sort]} {direction}, workflow_id {direction} "
        f"LIMIT {int(query.limit)} OFFSET {int(query.offset)}",
        params,
    ).fetchall()
    loose, loose_params = _filters(query, with_status=False)
    counts = {
        str(status): int(n)
        for status, n in con.execute(
            f"SELECT status, count(*) FROM workflow_executions{loose} GROUP BY status",
            loose_params,
        ).fetchall()
    }
    chosen = query.statuses or tuple(counts)
    total = sum(counts.get(status, 0) for status in chosen)
    return RunPage([_run_info(r, []) for r in rows], total, counts)
