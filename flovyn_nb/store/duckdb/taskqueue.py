"""The task queue on DuckDB (see ``store/taskqueue.py`` for the rows and intents).

The file has one writer at a time, so a claim's transaction is its lock: the pick and
the take need no row locks (PostgreSQL's twin takes them ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from flovyn_nb.model import ACTIVE_STATUSES
from flovyn_nb.store import taskqueue as tq
from flovyn_nb.store.duckdb.ops import epoch, live_engine_rows, to_ts
from flovyn_nb.store.taskqueue import QueuedTask

Con = duckdb.DuckDBPyConnection

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_OPEN = list(tq.OPEN)
# JSON columns come back as text: decoded in Python (a row is read rarely).
_SELECT = (
    "SELECT t.id, t.execution_id, t.workflow_id, t.kind, t.queue, t.input::VARCHAR, "
    "t.max_attempts, t.timeout_seconds, t.retry::VARCHAR, t.status, t.owner, t.attempt, "
    "t.resume_at, t.output::VARCHAR, t.error::VARCHAR, t.timed_out FROM task_queue AS t"
)


def _row(values: Sequence[Any]) -> QueuedTask:
    decoded = list(values)
    for i in (5, 8, 13, 14):
        decoded[i] = None if decoded[i] is None else json.loads(decoded[i])
    return tq.row(decoded, epoch=epoch)


def do(con: Con, intent: tq.TaskIntent) -> Any:
    """Apply one task-queue intent inside the caller's transaction."""
    match intent:
        case tq.QueueTask():
            _queue(con, intent)
        case tq.ClaimTasks():
            return _claim(con, intent)
        case tq.TaskProgress(task_id, engine_id, attempt, resume_at, now):
            rows = con.execute(
                "UPDATE task_queue SET attempt = greatest(attempt, ?), resume_at = ?, "
                "updated_at = ? WHERE id = ? AND owner = ? AND status = 'RUNNING' RETURNING id",
                [attempt, to_ts(resume_at), to_ts(now), task_id, engine_id],
            ).fetchall()
            return bool(rows)
        case tq.FinishTask():
            return _finish(con, intent)
        case tq.CancelTasks(ids, now):
            if ids:
                con.execute(
                    "UPDATE task_queue SET status = 'CANCELLED', updated_at = ? "
                    "WHERE id IN (SELECT unnest(?::VARCHAR[])) "
                    "AND status IN (SELECT unnest(?::VARCHAR[]))",
                    [to_ts(now), list(ids), _OPEN],
                )
    return None


def _queue(con: Con, q: tq.QueueTask) -> None:
    con.execute(
        "INSERT INTO task_queue (id, execution_id, workflow_id, kind, queue, input, "
        "max_attempts, timeout_seconds, retry, status, attempt, timed_out, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'QUEUED', 0, FALSE, ?, ?) "
        "ON CONFLICT DO NOTHING",
        [q.task_execution_id, q.execution_id, q.workflow_id, q.kind, q.queue, q.input_json,
         q.max_attempts, q.timeout_seconds, q.retry_json, to_ts(q.now), to_ts(q.now)],
    )  # fmt: skip


def _claim(con: Con, c: tq.ClaimTasks) -> list[QueuedTask]:
    if not c.kinds or not c.queues or c.limit < 1:
        return []
    alive = [e.id for e in live_engine_rows(con) if e.id == c.engine_id or c.alive(e)]
    ids = con.execute(
        "SELECT t.id FROM task_queue AS t JOIN workflow_executions AS w ON w.id = t.execution_id "
        "WHERE t.status IN (SELECT unnest($open::VARCHAR[])) "
        "AND t.queue IN (SELECT unnest($queues::VARCHAR[])) "
        "AND t.kind IN (SELECT unnest($kinds::VARCHAR[])) "
        "AND (t.owner IS NULL OR NOT list_contains($alive::VARCHAR[], t.owner)) "
        "AND w.status IN (SELECT unnest($active::VARCHAR[])) AND NOT w.cancel_requested "
        "ORDER BY t.created_at, t.id LIMIT $limit",
        {
            "open": _OPEN,
            "queues": list(c.queues),
            "kinds": list(c.kinds),
            "alive": alive,
            "active": _ACTIVE,
            "limit": c.limit,
        },
    ).fetchall()
    if not ids:
        return []
    taken = [r[0] for r in ids]
    con.execute(
        "UPDATE task_queue SET owner = ?, status = 'RUNNING', updated_at = ? "
        "WHERE id IN (SELECT unnest(?::VARCHAR[]))",
        [c.engine_id, to_ts(c.now), taken],
    )
    return read(con, taken)


def _finish(con: Con, f: tq.FinishTask) -> bool:
    rows = con.execute(
        "UPDATE task_queue SET status = ?, attempt = greatest(attempt, ?), output = ?, "
        "error = ?, timed_out = ?, resume_at = NULL, updated_at = ? "
        "WHERE id = ? AND owner = ? AND status = 'RUNNING' RETURNING id",
        [f.status, f.attempt, f.output_json, f.error_json, f.timed_out, to_ts(f.now),
         f.task_execution_id, f.engine_id],
    ).fetchall()  # fmt: skip
    return bool(rows)


def read(con: Con, task_ids: Sequence[str]) -> list[QueuedTask]:
    """The rows of these tasks (unknown ids are left out), oldest first."""
    if not task_ids:
        return []
    rows = con.execute(
        f"{_SELECT} WHERE t.id IN (SELECT unnest(?::VARCHAR[])) ORDER BY t.created_at, t.id",
        [list(task_ids)],
    ).fetchall()
    return [_row(r) for r in rows]
