"""Every SQL statement of the DuckDB backend: functions over one open connection.

Writers call these inside ``Lease.transaction``; readers inside ``Lease.read``. Times
cross this boundary as epoch seconds (floats) and are stored as UTC ``TIMESTAMP``s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import duckdb

from flovyn_nb.model import (
    PromiseStatus,
    RunStatus,
)
from flovyn_nb.store.rows import (
    EngineRow,
    EventRow,
    LogRow,
    NewPromise,
    NewRun,
    PromiseRow,
    RunRow,
    RunUpdate,
)

Con = duckdb.DuckDBPyConnection


def to_ts(epoch: float | None) -> datetime | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def from_ts(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


def epoch(value: datetime | None) -> float | None:
    return None if value is None else value.replace(tzinfo=UTC).timestamp()


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


# -- rows the engine writes -------------------------------------------------------------


# Up to this many rows, one multi-row ``VALUES`` insert is cheapest; beyond it the column
# arrays are unnested instead: binding a ``VALUES`` list costs ~45 us per row (500 event
# rows: 25 ms), unnesting five arrays ~10 us (5.5 ms).
VALUES_ROWS = 8


def _insert_many(con: Con, table: str, types: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    if len(rows) <= VALUES_ROWS:
        one = "(" + ",".join("?" * len(types)) + ")"
        params = [value for row in rows for value in row]
        con.execute(f"INSERT INTO {table} VALUES " + ",".join([one] * len(rows)), params)
        return
    columns = ", ".join(f"unnest(?::{kind}[])" for kind in types)
    con.execute(f"INSERT INTO {table} SELECT {columns}", [list(c) for c in zip(*rows, strict=True)])


def insert_events(con: Con, rows: Sequence[EventRow]) -> None:
    if rows:
        _insert_many(
            con,
            "events",
            ("VARCHAR", "INTEGER", "VARCHAR", "JSON", "TIMESTAMP"),
            [(r.execution_id, r.seq, r.type, r.payload, to_ts(r.ts)) for r in rows],
        )


def insert_logs(con: Con, rows: Sequence[LogRow]) -> None:
    if rows:
        _insert_many(
            con,
            "logs",
            ("VARCHAR", "VARCHAR", "TIMESTAMP", "VARCHAR", "VARCHAR", "VARCHAR"),
            [
                (r.execution_id, r.task_execution_id, to_ts(r.ts), r.stream, r.level, r.message)
                for r in rows
            ],
        )


# -- runs ------------------------------------------------------------------------------


_RUN_COLS = (
    "id, workflow_id, kind, status, input, owner, parent_id, cancel_requested, source_hash, queue"
)


def _run_row(row: Sequence[Any]) -> RunRow:
    return RunRow(
        id=row[0],
        workflow_id=row[1],
        kind=row[2],
        status=RunStatus(row[3]),
        input=_json(row[4]),
        owner=row[5],
        parent_id=row[6],
        cancel_requested=bool(row[7]),
        source_hash=row[8],
        queue=row[9],
    )


def find_run(con: Con, workflow_id: str) -> RunRow | None:
    row = con.execute(
        f"SELECT {_RUN_COLS} FROM workflow_executions WHERE workflow_id = ?", [workflow_id]
    ).fetchone()
    return None if row is None else _run_row(row)


def insert_runs(con: Con, runs: Sequence[NewRun]) -> None:
    """Insert runs (the workflow id's UNIQUE constraint refuses a second one)."""
    if runs:
        _insert_many(
            con,
            "workflow_executions (id, workflow_id, kind, status, input, source_hash, owner, "
            "parent_id, created_at, updated_at, queue, claimed_at)",
            ("VARCHAR",) * 4
            + ("JSON",)
            + ("VARCHAR",) * 3
            + ("TIMESTAMP",) * 2
            + ("VARCHAR", "TIMESTAMP"),
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


def insert_run(
    con: Con,
    *,
    execution_id: str,
    workflow_id: str,
    kind: str,
    input_json: str,
    source_hash: str | None,
    owner: str | None,
    parent_id: str | None,
    now: float,
) -> None:
    """Insert one run (see :func:`insert_runs`)."""
    insert_runs(
        con,
        [NewRun(execution_id, workflow_id, kind, input_json, source_hash, owner, parent_id, now)],
    )


def update_runs(con: Con, updates: Sequence[RunUpdate]) -> None:
    """Apply status changes. Only an end writes the output and error (and clears the
    owner); a move between RUNNING and WAITING writes the status."""
    _update_runs(
        con,
        (("status", "VARCHAR"), ("updated_at", "TIMESTAMP"), ("output", "JSON"), ("error", "JSON")),
        [
            (u.execution_id, u.status.value, to_ts(u.ts), u.output_json, u.error_json)
            for u in updates
            if u.status.is_terminal
        ],
        also="owner = NULL",
    )
    _update_runs(
        con,
        (("status", "VARCHAR"), ("updated_at", "TIMESTAMP")),
        [
            (u.execution_id, u.status.value, to_ts(u.ts))
            for u in updates
            if not u.status.is_terminal
        ],
    )


def _update_runs(
    con: Con, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]], also: str = ""
) -> None:
    """Rows are (id, *values of columns): a plain UPDATE each for a few, one set-based
    UPDATE for many (its join costs ~1 ms, a plain one by primary key ~0.4 ms)."""
    extra = f", {also}" if also else ""
    if len(rows) <= 2:
        sets = ", ".join(f"{name} = ?" for name, _ in columns)
        for row in rows:
            con.execute(
                f"UPDATE workflow_executions SET {sets}{extra} WHERE id = ?", [*row[1:], row[0]]
            )
        return
    sets = ", ".join(f"{name} = u.{name}" for name, _ in columns)
    unnests = ", ".join(f"unnest(?::{kind}[]) AS {name}" for name, kind in columns)
    con.execute(
        f"UPDATE workflow_executions AS w SET {sets}{extra} "
        f"FROM (SELECT unnest(?::VARCHAR[]) AS id, {unnests}) AS u WHERE w.id = u.id",
        [list(column) for column in zip(*rows, strict=True)],
    )


def run_status(con: Con, execution_id: str) -> tuple[RunStatus, Any, Any] | None:
    row = con.execute(
        "SELECT status, output, error FROM workflow_executions WHERE id = ?", [execution_id]
    ).fetchone()
    if row is None:
        return None
    return RunStatus(row[0]), _json(row[1]), _json(row[2])


def release_runs(con: Con, engine_id: str) -> None:
    con.execute("UPDATE workflow_executions SET owner = NULL WHERE owner = ?", [engine_id])


def release_run(con: Con, execution_id: str, engine_id: str) -> None:
    con.execute(
        "UPDATE workflow_executions SET owner = NULL WHERE id = ? AND owner = ?",
        [execution_id, engine_id],
    )


def request_cancel(con: Con, execution_id: str) -> None:
    con.execute(
        "UPDATE workflow_executions SET cancel_requested = TRUE WHERE id = ?", [execution_id]
    )


def load_histories(
    con: Con, execution_ids: Sequence[str]
) -> dict[str, list[tuple[int, str, Any, float]]]:
    """The histories of many runs in one query."""
    histories: dict[str, list[tuple[int, str, Any, float]]] = {i: [] for i in execution_ids}
    if not execution_ids:
        return histories
    rows = con.execute(
        "SELECT execution_id, seq, type, payload, epoch_us(ts) FROM events "
        "WHERE execution_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY execution_id, seq",
        [list(execution_ids)],
    ).fetchall()
    for r in rows:
        histories[r[0]].append((r[1], r[2], json.loads(r[3]), r[4] / 1e6))
    return histories


# -- promises and signals --------------------------------------------------------------


_PROMISE_COLS = (
    "id, execution_id, name, status, timeout_at, schema, value, error, resolved_by, delivered"
)


def _promise_row(row: Sequence[Any]) -> PromiseRow:
    return PromiseRow(
        id=row[0],
        execution_id=row[1],
        name=row[2],
        status=PromiseStatus(row[3]),
        timeout_at=epoch(row[4]),
        schema=_json(row[5]),
        value=_json(row[6]),
        error=row[7],
        resolved_by=row[8],
        delivered=bool(row[9]),
    )


def find_promise(con: Con, execution_id: str, name: str) -> PromiseRow | None:
    row = con.execute(
        f"SELECT {_PROMISE_COLS} FROM promises WHERE execution_id = ? AND name = ?",
        [execution_id, name],
    ).fetchone()
    return None if row is None else _promise_row(row)


def create_promises(con: Con, new: Sequence[NewPromise]) -> dict[str, PromiseRow]:
    """Insert pending promises (one statement for many); where an early resolver already
    wrote the row, keep its outcome and add the deadline and schema. Returns every row."""
    if not new:
        return {}
    ids = [p.promise_id for p in new]
    existing = {
        r[0]: _promise_row(r)
        for r in con.execute(
            f"SELECT {_PROMISE_COLS} FROM promises WHERE id IN (SELECT unnest(?::VARCHAR[]))",
            [ids],
        ).fetchall()
    }
    fresh = [p for p in new if p.promise_id not in existing]
    _insert_many(
        con,
        "promises (id, execution_id, name, status, timeout_at, schema, created_at)",
        ("VARCHAR",) * 4 + ("TIMESTAMP", "JSON", "TIMESTAMP"),
        [
            (
                p.promise_id,
                p.execution_id,
                p.name,
                PromiseStatus.PENDING.value,
                to_ts(p.timeout_at),
                p.schema_json,
                to_ts(p.created_at),
            )
            for p in fresh
        ],
    )
    rows = {}
    for p in new:
        if p.promise_id in existing:
            con.execute(
                "UPDATE promises SET timeout_at = ?, schema = ? WHERE id = ?",
                [to_ts(p.timeout_at), p.schema_json, p.promise_id],
            )
            rows[p.promise_id] = replace(
                existing[p.promise_id],
                timeout_at=epoch(to_ts(p.timeout_at)),
                schema=_json(p.schema_json),
            )
    for p in fresh:
        rows[p.promise_id] = PromiseRow(
            id=p.promise_id,
            execution_id=p.execution_id,
            name=p.name,
            status=PromiseStatus.PENDING,
            timeout_at=p.timeout_at,
            schema=_json(p.schema_json),
            value=None,
            error=None,
            resolved_by=None,
            delivered=False,
        )
    return rows


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
) -> str:
    """Record a promise's outcome (insert when it does not exist yet: early resolution).

    Returns the promise's id."""
    if promise_id is None:
        promise_id = f"{execution_id}:{name}"  # the id the workflow will give it
        con.execute(
            "INSERT INTO promises (id, execution_id, name, status, value, error, created_at, "
            "resolved_at, resolved_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
        )
    elif value_json is not None and len(value_json) >= _BIG_VALUE:
        # DuckDB's UPDATE of a big string holds about six copies of it until the commit
        # (measured: ~290 MB for 50 MB); deleting the row and inserting it again holds
        # about three. It costs ~10 ms more, so only big values take this way.
        kept = con.execute(
            "DELETE FROM promises WHERE id = ? RETURNING execution_id, name, timeout_at, "
            "schema, created_at, delivered",
            [promise_id],
        ).fetchone()
        if kept is None:  # the caller found the row in this transaction: cannot happen
            raise LookupError(f"promise {promise_id} vanished while being settled")
        con.execute(
            "INSERT INTO promises (id, execution_id, name, timeout_at, schema, created_at, "
            "delivered, status, value, error, resolved_at, resolved_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [promise_id, *kept, status.value, value_json, error, to_ts(now), resolved_by],
        )
    else:
        con.execute(
            "UPDATE promises SET status = ?, value = ?, error = ?, resolved_at = ?, "
            "resolved_by = ? WHERE id = ?",
            [status.value, value_json, error, to_ts(now), resolved_by, promise_id],
        )
    return promise_id


_BIG_VALUE = 1024 * 1024  # characters of JSON from which a promise row is written anew


# Still-pending promises become TIMED_OUT as of their deadline, marked delivered (their
# owner hands the timeout to the workflow itself).
_TIME_OUT = (
    "UPDATE promises SET status = 'TIMED_OUT', resolved_at = timeout_at, "
    "resolved_by = 'timeout', delivered = TRUE "
    "WHERE id IN (SELECT unnest(?::VARCHAR[])) AND status = 'PENDING'"
)


def time_out_promises(con: Con, promise_ids: Sequence[str]) -> list[PromiseRow]:
    """Mark the still-pending ones TIMED_OUT as of their deadline (one statement for any
    number; the owner delivers them at once, so they are marked delivered too); return all
    of them as they are now (some may have been resolved first)."""
    ids = list(promise_ids)
    rows = [
        _promise_row(r)
        for r in con.execute(f"{_TIME_OUT} RETURNING {_PROMISE_COLS}", [ids]).fetchall()
    ]
    if len(rows) < len(ids):  # settled before their deadline: read how
        timed_out = {row.id for row in rows}
        rest = [i for i in ids if i not in timed_out]
        rows += [
            _promise_row(r)
            for r in con.execute(
                f"SELECT {_PROMISE_COLS} FROM promises WHERE id IN (SELECT unnest(?::VARCHAR[]))",
                [rest],
            ).fetchall()
        ]
    return rows


def time_out_pending(con: Con, promise_ids: Sequence[str]) -> None:
    """Record timeouts their owner decided (and delivered) already: still-pending promises
    become TIMED_OUT as of their deadline. (A resolve after the deadline fails anyway, see
    ``inbox_rules.check_settle``, so nothing else can have settled them.)"""
    if promise_ids:
        con.execute(_TIME_OUT, [list(promise_ids)])


def reset_promise(con: Con, promise_id: str) -> None:
    con.execute(
        "UPDATE promises SET status = 'PENDING', value = NULL, error = NULL, resolved_at = NULL, "
        "resolved_by = NULL, delivered = FALSE WHERE id = ?",
        [promise_id],
    )


def mark_promises_delivered(con: Con, promise_ids: Sequence[str]) -> None:
    if len(promise_ids) == 1:
        con.execute("UPDATE promises SET delivered = TRUE WHERE id = ?", [promise_ids[0]])
    elif promise_ids:
        con.execute(
            "UPDATE promises SET delivered = TRUE WHERE id IN (SELECT unnest(?::VARCHAR[]))",
            [list(promise_ids)],
        )


def undelivered_promises(con: Con, execution_ids: Sequence[str]) -> list[PromiseRow]:
    if not execution_ids:
        return []
    marks = ",".join("?" * len(execution_ids))
    rows = con.execute(
        f"SELECT {_PROMISE_COLS} FROM promises WHERE execution_id IN ({marks}) "
        "AND status <> 'PENDING' AND NOT delivered",
        list(execution_ids),
    ).fetchall()
    return [_promise_row(r) for r in rows]


def insert_signal(
    con: Con, *, signal_id: str, execution_id: str, name: str, value_json: str, now: float
) -> None:
    con.execute(
        # The run's next sequence number, in the inserting transaction (one writer per file).
        "INSERT INTO signals (id, execution_id, name, value, created_at, seq) "
        "SELECT ?, ?, ?, ?, ?, coalesce(max(seq), 0) + 1 FROM signals WHERE execution_id = ?",
        [signal_id, execution_id, name, value_json, to_ts(now), execution_id],
    )


def undelivered_signals(con: Con, execution_ids: Sequence[str]) -> list[tuple[str, str, str, Any]]:
    if not execution_ids:
        return []
    marks = ",".join("?" * len(execution_ids))
    rows = con.execute(
        f"SELECT id, execution_id, name, value FROM signals WHERE execution_id IN ({marks}) "
        "AND NOT delivered ORDER BY execution_id, seq",
        list(execution_ids),
    ).fetchall()
    return [(r[0], r[1], r[2], _json(r[3])) for r in rows]


def mark_signal_delivered(con: Con, signal_id: str) -> None:
    con.execute("UPDATE signals SET delivered = TRUE WHERE id = ?", [signal_id])


def cancel_requested(con: Con, execution_ids: Sequence[str]) -> list[str]:
    if not execution_ids:
        return []
    marks = ",".join("?" * len(execution_ids))
    rows = con.execute(
        f"SELECT id FROM workflow_executions WHERE id IN ({marks}) AND cancel_requested",
        list(execution_ids),
    ).fetchall()
    return [r[0] for r in rows]


# -- engines ---------------------------------------------------------------------------


def register_engine(
    con: Con, engine_id: str, pid: int, host: str, proc_start: str | None, now: float
) -> None:
    con.execute(
        "INSERT INTO engines (id, pid, host, proc_start, started_at, heartbeat_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [engine_id, pid, host, proc_start, to_ts(now), to_ts(now)],
    )


def heartbeat(con: Con, engine_id: str, now: float) -> None:
    con.execute("UPDATE engines SET heartbeat_at = ? WHERE id = ?", [to_ts(now), engine_id])


def stop_engine(con: Con, engine_id: str) -> None:
    con.execute("UPDATE engines SET stopped = TRUE WHERE id = ?", [engine_id])


def live_engine_rows(con: Con) -> list[EngineRow]:
    rows = con.execute(
        "SELECT id, pid, host, proc_start, heartbeat_at FROM engines WHERE NOT stopped"
    ).fetchall()
    return [EngineRow(r[0], r[1], r[2], r[3], epoch(r[4]) or 0.0) for r in rows]
