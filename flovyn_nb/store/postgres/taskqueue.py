"""The task queue on PostgreSQL (see ``store/taskqueue.py`` for the rows and intents).

The twin of ``store/duckdb/taskqueue.py`` for concurrent claimers: a claim locks the rows
it picks ``FOR UPDATE SKIP LOCKED``, so two engines claiming at once take different
tasks, and a row another transaction holds right now is left for the next claim.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from flovyn_nb.model import ACTIVE_STATUSES
from flovyn_nb.store import taskqueue as tq
from flovyn_nb.store.postgres.ops import Con, epoch, live_engine_rows, to_ts
from flovyn_nb.store.taskqueue import QueuedTask

_HOST = socket.gethostname()
_ACTIVE = [s.value for s in ACTIVE_STATUSES]
_OPEN = list(tq.OPEN)
_SELECT = f"SELECT {', '.join('t.' + c.strip() for c in tq.COLS.split(','))} FROM task_queue AS t"


def do(con: Con, intent: tq.TaskIntent, lease: float) -> Any:
    """Apply one task-queue intent inside the caller's transaction (``lease``: the
    heartbeat age after which a claimer on another host is dead, as for runs)."""
    match intent:
        case tq.QueueTask():
            _queue(con, intent)
        case tq.ClaimTasks():
            return _claim(con, intent, lease)
        case tq.TaskProgress(task_id, engine_id, attempt, resume_at, now):
            rows = con.execute(
                "UPDATE task_queue SET attempt = greatest(attempt, %s), resume_at = %s, "
                "updated_at = %s WHERE id = %s AND owner = %s AND status = 'RUNNING' "
                "RETURNING id",
                [attempt, to_ts(resume_at), to_ts(now), task_id, engine_id],
            ).fetchall()
            return bool(rows)
        case tq.FinishTask():
            return _finish(con, intent)
        case tq.CancelTasks(ids, now):
            if ids:
                con.execute(
                    "UPDATE task_queue SET status = 'CANCELLED', updated_at = %s "
                    "WHERE id = ANY(%s) AND status = ANY(%s)",
                    [to_ts(now), list(ids), _OPEN],
                )
    return None


def _queue(con: Con, q: tq.QueueTask) -> None:
    con.execute(
        "INSERT INTO task_queue (id, execution_id, workflow_id, kind, queue, input, "
        "max_attempts, timeout_seconds, retry, status, attempt, timed_out, created_at, "
        "updated_at) VALUES (%s, %s, %s, %s, %s, %s::json, %s, %s, %s::json, 'QUEUED', 0, "
        "FALSE, %s, %s) ON CONFLICT (id) DO NOTHING",
        [q.task_execution_id, q.execution_id, q.workflow_id, q.kind, q.queue, q.input_json,
         q.max_attempts, q.timeout_seconds, q.retry_json, to_ts(q.now), to_ts(q.now)],
    )  # fmt: skip


def _claim(con: Con, c: tq.ClaimTasks, lease: float) -> list[QueuedTask]:
    if not c.kinds or not c.queues or c.limit < 1:
        return []
    # On another host no PID can be checked: the lease, on the server's clock, decides.
    alive = [
        e.id
        for e, age in live_engine_rows(con)
        if e.id == c.engine_id or (c.alive(e) and (e.host == _HOST or age <= lease))
    ]
    rows = con.execute(
        "WITH chosen AS (SELECT t.id FROM task_queue AS t "
        "JOIN workflow_executions AS w ON w.id = t.execution_id "
        "WHERE t.status = ANY(%(open)s) AND t.queue = ANY(%(queues)s) "
        "AND t.kind = ANY(%(kinds)s) AND (t.owner IS NULL OR t.owner <> ALL(%(alive)s)) "
        "AND w.status = ANY(%(active)s) AND NOT w.cancel_requested "
        "ORDER BY t.created_at, t.id LIMIT %(limit)s FOR UPDATE OF t SKIP LOCKED) "
        "UPDATE task_queue AS q SET owner = %(engine)s, status = 'RUNNING', "
        "updated_at = %(now)s FROM chosen WHERE q.id = chosen.id RETURNING q.id",
        {
            "open": _OPEN,
            "queues": list(c.queues),
            "kinds": list(c.kinds),
            "alive": alive,
            "active": _ACTIVE,
            "limit": c.limit,
            "engine": c.engine_id,
            "now": to_ts(c.now),
        },
    ).fetchall()
    return read(con, [r[0] for r in rows])


def _finish(con: Con, f: tq.FinishTask) -> bool:
    rows = con.execute(
        "UPDATE task_queue SET status = %s, attempt = greatest(attempt, %s), "
        "output = %s::json, error = %s::json, timed_out = %s, resume_at = NULL, "
        "updated_at = %s WHERE id = %s AND owner = %s AND status = 'RUNNING' RETURNING id",
        [f.status, f.attempt, f.output_json, f.error_json, f.timed_out, to_ts(f.now),
         f.task_execution_id, f.engine_id],
    ).fetchall()  # fmt: skip
    return bool(rows)


def read(con: Con, task_ids: Sequence[str]) -> list[QueuedTask]:
    """The rows of these tasks (unknown ids are left out), oldest first."""
    if not task_ids:
        return []
    rows = con.execute(
        f"{_SELECT} WHERE t.id = ANY(%s) ORDER BY t.created_at, t.id", [list(task_ids)]
    ).fetchall()
    return [tq.row(r, epoch=epoch) for r in rows]
