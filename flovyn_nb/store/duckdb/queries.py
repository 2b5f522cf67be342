"""The DuckDB statements behind the user's queries (runs, promises, logs)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC
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
from flovyn_nb.store.duckdb.ops import Con, _json, from_ts, to_ts


def _error(text: str | None) -> ErrorInfo | None:
    data = _json(text)
    return None if data is None else ErrorInfo.model_validate(data)


def get_run(con: Con, workflow_id: str, *, with_events: bool = True) -> RunInfo | None:
    row = con.execute(
        "SELECT id, workflow_id, kind, status, input, output, error, parent_id, owner, "
        "created_at, updated_at, queue FROM workflow_executions WHERE workflow_id = ? OR id = ? "
        "ORDER BY workflow_id = ? DESC LIMIT 1",
        [workflow_id, workflow_id, workflow_id],
    ).fetchone()
    if row is None:
        return None
    events: list[EventInfo] = []
    if with_events:
        events = [
            EventInfo(seq=r[0], type=r[1], payload=json.loads(r[2]), ts=r[3].replace(tzinfo=UTC))
            for r in con.execute(
                "SELECT seq, type, payload, ts FROM events WHERE execution_id = ? ORDER BY seq",
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
        input=_json(row[4]),
        output=_json(row[5]),
        error=_error(row[6]),
        parent_id=row[7],
        owner=row[8],
        created_at=row[9].replace(tzinfo=UTC),
        updated_at=row[10].replace(tzinfo=UTC),
        events=events,
        queue=row[11],
    )


def list_runs(
    con: Con, *, statuses: Iterable[str] = (), kind: str | None = None, limit: int | None = None
) -> list[RunInfo]:
    clauses, params = [], []
    statuses = list(statuses)
    if statuses:
        clauses.append("status IN (" + ",".join("?" * len(statuses)) + ")")
        params.extend(statuses)
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    tail = f" LIMIT {int(limit)}" if limit else ""
    rows = con.execute(
        "SELECT id, workflow_id, kind, status, input, output, error, parent_id, owner, "
        f"created_at, updated_at, queue FROM workflow_executions{where} "
        f"ORDER BY created_at DESC{tail}",
        params,
    ).fetchall()
    return [_run_info(r, []) for r in rows]


def source_hashes(
    con: Con, *, kind: str, statuses: Iterable[str] = ()
) -> list[tuple[str, str | None]]:
    """(workflow id, hash of the source it started with) of the runs of ``kind``, newest
    first: the run row's column, so no history is read."""
    statuses = list(statuses)
    where = "kind = ?"
    if statuses:
        where += " AND status IN (" + ",".join("?" * len(statuses)) + ")"
    rows = con.execute(
        f"SELECT workflow_id, source_hash FROM workflow_executions WHERE {where} "
        "ORDER BY created_at DESC",
        [kind, *statuses],
    ).fetchall()
    return [(str(r[0]), r[1]) for r in rows]


def promises(
    con: Con, *, workflow_id: str | None = None, pending_only: bool = True
) -> list[PromiseInfo]:
    clauses, params = [], []
    if pending_only:
        clauses.append("p.status = 'PENDING'")
        clauses.append("r.status IN ('RUNNING', 'WAITING', 'PENDING')")
    if workflow_id is not None:
        clauses.append("r.workflow_id = ?")
        params.append(workflow_id)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    rows = con.execute(
        "SELECT r.workflow_id, p.execution_id, p.id, p.name, p.status, p.created_at, "
        "p.timeout_at, p.schema, p.value, p.error, p.resolved_at, p.resolved_by "
        f"FROM promises p JOIN workflow_executions r ON r.id = p.execution_id{where} "
        "ORDER BY p.created_at",
        params,
    ).fetchall()
    return [
        PromiseInfo(
            workflow_id=r[0],
            execution_id=r[1],
            promise_id=r[2],
            name=r[3],
            status=PromiseStatus(r[4]),
            created_at=r[5].replace(tzinfo=UTC),
            timeout_at=from_ts(r[6]),
            schema=_json(r[7]),
            value=_json(r[8]),
            error=r[9],
            resolved_at=from_ts(r[10]),
            resolved_by=r[11],
        )
        for r in rows
    ]


def logs(con: Con, execution_id: str, *, since_ts: float | None = None) -> list[LogEntry]:
    params: list[Any] = [execution_id]
    extra = ""
    if since_ts is not None:
        extra = " AND ts > ?"
        params.append(to_ts(since_ts))
    rows = con.execute(
        "SELECT execution_id, task_execution_id, ts, stream, level, message FROM logs "
        f"WHERE execution_id = ?{extra} ORDER BY ts, rowid",
        params,
    ).fetchall()
    return [
        LogEntry(
            execution_id=r[0],
            task_execution_id=r[1],
            ts=r[2].replace(tzinfo=UTC),
            stream=r[3],
            level=r[4],
            message=r[5],
        )
        for r in rows
    ]
