"""Every SQL statement of the PostgreSQL backend's engine side: functions over one
connection, called inside the backend's transactions.

The twin of ``store/duckdb/ops.py`` with PostgreSQL's concurrency in mind: other writers
commit at the same time, so every read that a write depends on locks what it read (runs
claimed ``FOR UPDATE SKIP LOCKED`` in ``queues.py``, a promise settled ``FOR UPDATE``), inserts that may
meet a concurrent one say ``ON CONFLICT``, and a timeout is a conditional ``UPDATE``.
Times cross as epoch seconds and are stored as ``TIMESTAMPTZ``; JSON values arrive as
text and leave parsed (psycopg's JSON loader).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg

from flovyn_nb.model import PromiseStatus, RunStatus
from flovyn_nb.store.rows import (
    EngineRow,
    EventRow,
    HistoryEvent,
    LogRow,
    NewPromise,
    NewRun,
    PromiseRow,
    RunRow,
    RunUpdate,
)

Con = psycopg.Connection[tuple[Any, ...]]


def to_ts(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def epoch(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


# -- rows the engine writes -------------------------------------------------------------


def _insert_many(con: Con, table: str, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """One statement for any number of rows: one array per column, unnested."""
    if not rows:
        return
    arrays = ", ".join(
        f"%s::text[]::{kind}[]" if kind == "json" else f"%s::{kind}[]" for kind in types
    )
    con.execute(
        f"INSERT INTO {table} SELECT * FROM unnest({arrays})",
        [list(column) for column in zip(*rows, strict=True)],
    )


def insert_events(con: Con, rows: Sequence[EventRow]) -> None:
    _insert_many(
        con,
        "events (execution_id, seq, type, payload, ts)",
        ("text", "int", "text", "json", "timestamptz"),
        [(r.execution_id, r.seq, r.type, r.payload, to_ts(r.ts)) for r in rows],
    )


def insert_logs(con: Con, rows: Sequence[LogRow]) -> None:
    _insert_many(
        con,
        "logs (execution_id, task_execution_id, ts, stream, level, message)",
        ("text", "text", "timestamptz", "text", "text", "text"),
        [
            (r.execution_id, r.task_execution_id, to_ts(r.ts), r.stream, r.level, r.message)
            for r in rows
        ],
    )


# -- runs ------------------------------------------------------------------------------

RUN_COLS = (
    "id, workflow_id, kind, status, input, owner, parent_id, cancel_requested, source_hash, queue"
)


def run_row(row: Sequence[Any]) -> RunRow:
    return RunRow(
        id=row[0],
        workflow_id=row[1],
        kind=row[2],
        status=RunStatus(row[3]),
        input=row[4],
        owner=row[5],
        parent_id=row[6],
        cancel_requested=bool(row[7]),
        source_hash=row[8],
        queue=row[9],
    )


def find_run(con: Con, workflow_id: str, *, lock: str = "") -> RunRow | None:
    """The run by workflow id; ``lock`` (e.g. ``FOR SHARE``) holds its row until the
    transaction ends."""
    row = con.execute(
        f"SELECT {RUN_COLS} FROM workflow_executions WHERE workflow_id = %s {lock}",
        [workflow_id],
    ).fetchone()
    return None if row is None else run_row(row)


def insert_runs(con: Con, runs: Sequence[NewRun]) -> None:
    """Insert runs (the workflow id's UNIQUE constraint refuses a second one)."""
    _insert_many(
        con,
        "workflow_executions (id, workflow_id, kind, status, input, source_hash, owner, "
        "parent_id, created_at, updated_at, queue, claimed_at)",
        (
            "text",
            "text",
            "text",
            "text",
            "json",
            "text",
            "text",
            "text",
            "timestamptz",
            "timestamptz",
            "text",
            "timestamptz",
        ),
        [
            (
                r.execution_id,
                r.workflow_id,
                r.kind,
                RunStatus.RUNNING.value,
                r.input_json,
                r.source_hash,
                r.owner,
                r.parent_id,
                to_ts(r.now),
                to_ts(r.now),
                r.queue,
                None if r.owner is None else to_ts(r.now),  # its creator runs it
            )
            for r in runs
        ],
    )


def update_runs(con: Con, updates: Sequence[RunUpdate]) -> None:
    """Apply status changes. Only an end writes the output and error (and clears the
    owner); a move between RUNNING and WAITING writes the status. One statement each."""
    ended = [u for u in updates if u.status.is_terminal]
    if ended:
        con.execute(
            "UPDATE workflow_executions AS w SET status = u.status, updated_at = u.ts, "
            "output = u.output::json, error = u.error::json, owner = NULL "
            "FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::text[], %s::text[]) "
            "AS u(id, status, ts, output, error) WHERE w.id = u.id",
            [
                [u.execution_id for u in ended],
                [u.status.value for u in ended],
                [to_ts(u.ts) for u in ended],
                [u.output_json for u in ended],
                [u.error_json for u in ended],
            ],
        )
    moved = [u for u in updates if not u.status.is_terminal]
    if moved:
        con.execute(
            "UPDATE workflow_executions AS w SET status = u.status, updated_at = u.ts "
            "FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS u(id, status, ts) "
            "WHERE w.id = u.id",
            [
                [u.execution_id for u in moved],
                [u.status.value for u in moved],
                [to_ts(u.ts) for u in moved],
            ],
        )


def run_status(con: Con, execution_id: str) -> tuple[RunStatus, Any, Any] | None:
    row = con.execute(
        "SELECT status, output, error FROM workflow_executions WHERE id = %s", [execution_id]
    ).fetchone()
    return None if row is None else (RunStatus(row[0]), row[1], row[2])


def release_runs(con: Con, engine_id: str) -> None:
    con.execute("UPDATE workflow_executions SET owner = NULL WHERE owner = %s", [engine_id])


def release_run(con: Con, execution_id: str, engine_id: str) -> None:
    con.execute(
        "UPDATE workflow_executions SET owner = NULL WHERE id = %s AND owner = %s",
        [execution_id, engine_id],
    )


def request_cancel(con: Con, execution_id: str, reason: str = "") -> None:
    # The first reason given stays: the owner may have recorded it already.
    con.execute(
        "UPDATE workflow_executions SET cancel_requested = TRUE, "
        "cancel_reason = coalesce(cancel_reason, nullif(%s, '')) WHERE id = %s",
        [reason, execution_id],
    )


def load_histories(con: Con, execution_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
    """The histories of many runs in one query."""
    histories: dict[str, list[HistoryEvent]] = {i: [] for i in execution_ids}
    if not execution_ids:
        return histories
    rows = con.execute(
        "SELECT execution_id, seq, type, payload, ts FROM events "
        "WHERE execution_id = ANY(%s) ORDER BY execution_id, seq",
        [list(execution_ids)],
    ).fetchall()
    for r in rows:
        histories[r[0]].append((r[1], r[2], r[3], r[4].timestamp()))
    return histories


# -- promises and signals --------------------------------------------------------------

PROMISE_COLS = (
    "id, execution_id, name, status, timeout_at, schema, value, error, resolved_by, delivered"
)


def promise_row(row: Sequence[Any]) -> PromiseRow:
    return PromiseRow(
        id=row[0],
        execution_id=row[1],
        name=row[2],
        status=PromiseStatus(row[3]),
        timeout_at=epoch(row[4]),
        schema=row[5],
        value=row[6],
        error=row[7],
        resolved_by=row[8],
        delivered=bool(row[9]),
    )


def find_promise(con: Con, execution_id: str, name: str) -> PromiseRow | None:
    """The promise's row, locked until the transaction ends: of two settlers (or a settler
    and a timeout) the second waits, then sees what the first wrote."""
    row = con.execute(
        f"SELECT {PROMISE_COLS} FROM promises WHERE execution_id = %s AND name = %s FOR UPDATE",
        [execution_id, name],
    ).fetchone()
    return None if row is None else promise_row(row)


def create_promises(con: Con, new: Sequence[NewPromise]) -> dict[str, PromiseRow]:
    """Insert pending promises; where an early resolver wrote the row first (even while
    this runs: ``ON CONFLICT``), keep its outcome and add the deadline and schema."""
    if not new:
        return {}
    con.execute(
        "INSERT INTO promises (id, execution_id, name, status, timeout_at, schema, created_at) "
        "SELECT id, execution_id, name, 'PENDING', timeout_at, schema::json, created_at "
        "FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[], "
        "%s::timestamptz[]) AS p(id, execution_id, name, timeout_at, schema, created_at) "
        "ON CONFLICT DO NOTHING",
        [
            [p.promise_id for p in new],
            [p.execution_id for p in new],
            [p.name for p in new],
            [to_ts(p.timeout_at) for p in new],
            [p.schema_json for p in new],
            [to_ts(p.created_at) for p in new],
        ],
    )
    # Rows that existed already (early resolutions) get the deadline and schema now; the
    # fresh ones are rewritten with the same values (cheaper than telling them apart).
    rows = con.execute(
        f"UPDATE promises AS p SET timeout_at = u.timeout_at, schema = u.schema::json "
        f"FROM unnest(%s::text[], %s::timestamptz[], %s::text[]) AS u(id, timeout_at, schema) "
        f"WHERE p.id = u.id RETURNING {', '.join('p.' + c.strip() for c in PROMISE_COLS.split(','))}",
        [
            [p.promise_id for p in new],
            [to_ts(p.timeout_at) for p in new],
            [p.schema_json for p in new],
        ],
    ).fetchall()
    return {r[0]: promise_row(r) for r in rows}


def settle_promise(
    con: Con,
    *,
    promise_id: str | None,
    execution_id: str,
    name: str,
    status: PromiseStatus,
    value_json: str | None,
    error: str | None,
    resolved_by: str | None,
    now: float,
) -> str | None:
    """Record a promise's outcome (insert when it does not exist yet: early resolution).

    Returns the promise's id, or None when an early insert met a row another transaction
    inserted meanwhile (the caller starts over and then sees that row)."""
    if promise_id is None:
        promise_id = f"{execution_id}:{name}"  # the id the workflow will give it
        inserted = con.execute(
            "INSERT INTO promises (id, execution_id, name, status, value, error, created_at, "
            "resolved_at, resolved_by) VALUES (%s, %s, %s, %s, %s::json, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING RETURNING id",
            [
                promise_id,
                execution_id,
                name,
                status.value,
                value_json,
                error,
                to_ts(now),
                to_ts(now),
                resolved_by,
            ],
        ).fetchone()
        return None if inserted is None else promise_id
    con.execute(
        "UPDATE promises SET status = %s, value = %s::json, error = %s, resolved_at = %s, "
        "resolved_by = %s WHERE id = %s",
        [status.value, value_json, error, to_ts(now), resolved_by, promise_id],
    )
    return promise_id


# Still-pending promises become TIMED_OUT as of their deadline, marked delivered (their
# owner hands the timeout to the workflow itself). Conditional: a settle that committed
# first (or holds the row now: this waits for it, then reads again) wins.
_TIME_OUT = (
    "UPDATE promises SET status = 'TIMED_OUT', resolved_at = timeout_at, "
    "resolved_by = 'timeout', delivered = TRUE WHERE id = ANY(%s) AND status = 'PENDING'"
)


def time_out_promises(con: Con, promise_ids: Sequence[str]) -> list[PromiseRow]:
    """Time out the still-pending ones; return all of them as they are now."""
    ids = list(promise_ids)
    rows = [
        promise_row(r)
        for r in con.execute(f"{_TIME_OUT} RETURNING {PROMISE_COLS}", [ids]).fetchall()
    ]
    if len(rows) < len(ids):  # settled before their deadline: read how
        done = {row.id for row in rows}
        rest = [i for i in ids if i not in done]
        rows += [
            promise_row(r)
            for r in con.execute(
                f"SELECT {PROMISE_COLS} FROM promises WHERE id = ANY(%s)", [rest]
            ).fetchall()
        ]
    return rows


def time_out_pending(con: Con, promise_ids: Sequence[str]) -> None:
    if promise_ids:
        con.execute(_TIME_OUT, [list(promise_ids)])


def reset_promise(con: Con, promise_id: str) -> None:
    con.execute(
        "UPDATE promises SET status = 'PENDING', value = NULL, error = NULL, resolved_at = NULL, "
        "resolved_by = NULL, delivered = FALSE WHERE id = %s",
        [promise_id],
    )


def mark_promises_delivered(con: Con, promise_ids: Sequence[str]) -> None:
    if promise_ids:
        con.execute("UPDATE promises SET delivered = TRUE WHERE id = ANY(%s)", [list(promise_ids)])


def undelivered_promises(con: Con, execution_ids: Sequence[str]) -> list[PromiseRow]:
    if not execution_ids:
        return []
    rows = con.execute(
        f"SELECT {PROMISE_COLS} FROM promises WHERE execution_id = ANY(%s) "
        "AND status <> 'PENDING' AND NOT delivered",
        [list(execution_ids)],
    ).fetchall()
    return [promise_row(r) for r in rows]


def insert_signal(
    con: Con, *, signal_id: str, execution_id: str, name: str, value_json: str, now: float
) -> None:
    # Senders to one run take turns (a lock held until commit), so each reads the last
    # sequence number its predecessor wrote.
    con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [execution_id])
    con.execute(
        "INSERT INTO signals (id, execution_id, name, value, created_at, seq) "
        "SELECT %s, %s, %s, %s::json, %s, coalesce(max(seq), 0) + 1 FROM signals "
        "WHERE execution_id = %s",
        [signal_id, execution_id, name, value_json, to_ts(now), execution_id],
    )


def undelivered_signals(con: Con, execution_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    if not execution_ids:
        return []
    return con.execute(
        "SELECT id, execution_id, name, value FROM signals WHERE execution_id = ANY(%s) "
        "AND NOT delivered ORDER BY execution_id, seq",
        [list(execution_ids)],
    ).fetchall()


def mark_signal_delivered(con: Con, signal_id: str) -> None:
    con.execute("UPDATE signals SET delivered = TRUE WHERE id = %s", [signal_id])


def cancel_requested(con: Con, execution_ids: Sequence[str]) -> list[tuple[str, str]]:
    """(execution id, reason or "") of the runs among these with a cancel request."""
    if not execution_ids:
        return []
    rows = con.execute(
        "SELECT id, coalesce(cancel_reason, '') FROM workflow_executions "
        "WHERE id = ANY(%s) AND cancel_requested",
        [list(execution_ids)],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


# -- engines ---------------------------------------------------------------------------


def register_engine(
    con: Con, engine_id: str, pid: int, host: str, proc_start: str | None, now: float
) -> None:
    con.execute(
        "INSERT INTO engines (id, pid, host, proc_start, started_at, heartbeat_at) "
        "VALUES (%s, %s, %s, %s, %s, %s)",
        [engine_id, pid, host, proc_start, to_ts(now), to_ts(now)],
    )


def heartbeat(con: Con, engine_id: str, now: float) -> None:
    con.execute("UPDATE engines SET heartbeat_at = %s WHERE id = %s", [to_ts(now), engine_id])


def stop_engines(con: Con, engine_ids: Sequence[str]) -> None:
    if engine_ids:
        con.execute("UPDATE engines SET stopped = TRUE WHERE id = ANY(%s)", [list(engine_ids)])


def live_engine_rows(con: Con) -> list[tuple[EngineRow, float]]:
    """Every engine not marked stopped, with the age of its heartbeat by the server's clock
    (the one clock every host shares)."""
    rows = con.execute(
        "SELECT id, pid, host, proc_start, heartbeat_at, "
        "extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 "
        "FROM engines WHERE NOT stopped"
    ).fetchall()
    return [(EngineRow(r[0], r[1], r[2], r[3], r[4].timestamp()), float(r[5])) for r in rows]
