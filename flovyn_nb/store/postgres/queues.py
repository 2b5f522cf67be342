"""Claiming runs on PostgreSQL within their queues' limits, and the queues' rows.

The twin of ``store/duckdb/claims.py``, for concurrent claimers. A queue's
``concurrency`` and ``rate_limit`` count runs across engines, so the claimers of a limited
queue take turns: a transaction advisory lock per limited queue (taken in name order, so
two claimers never wait on each other crosswise) is held from the count to the commit.
The picking statement ranks runs with window functions, which PostgreSQL refuses next to
``FOR UPDATE``; so it picks without locking, and the take locks the picked rows ``FOR
UPDATE SKIP LOCKED`` and re-checks their owner: a run another transaction holds right
now is left (and the claim says ``more``), never taken twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from flovyn_nb.model import ACTIVE_STATUSES
from flovyn_nb.store.catalog import QueueRow
from flovyn_nb.store.postgres import ops
from flovyn_nb.store.postgres.ops import RUN_COLS, Con, epoch, run_row, to_ts
from flovyn_nb.store.protocol import Claim
from flovyn_nb.store.rows import Claimed, EngineRow, RunRow

_ACTIVE = [s.value for s in ACTIVE_STATUSES]
# Advisory lock keys of queues: hashtextextended(name, _QUEUE_SEED).
_QUEUE_SEED = 2

_PICK = f"""
WITH limits AS (
    SELECT * FROM queues WHERE name = ANY(%(queues)s)
), used AS (
    SELECT l.name, l.concurrency, l.worker_concurrency, l.rate_limit,
        count(w.id) FILTER (WHERE w.status = ANY(%(active)s) AND w.claimed_at IS NOT NULL)
            AS running,
        count(w.id) FILTER (WHERE w.status = ANY(%(active)s) AND w.owner = %(engine)s) AS mine,
        count(w.id) FILTER (WHERE w.claimed_at > %(now)s - make_interval(secs => l.rate_period))
            AS recent
    FROM limits AS l LEFT JOIN workflow_executions AS w ON w.queue = l.name
    GROUP BY l.name, l.concurrency, l.worker_concurrency, l.rate_limit, l.rate_period
), candidates AS (
    SELECT {", ".join("w." + c.strip() for c in RUN_COLS.split(","))},
        w.created_at, w.claimed_at IS NOT NULL AS resumed,
        row_number() OVER (PARTITION BY w.queue, w.claimed_at IS NULL
            ORDER BY w.created_at, w.id) AS n_new,
        row_number() OVER (PARTITION BY w.queue
            ORDER BY w.claimed_at IS NULL, w.created_at, w.id) AS n_any
    FROM workflow_executions AS w
    WHERE w.status = ANY(%(active)s) AND w.kind = ANY(%(kinds)s) AND w.queue = ANY(%(queues)s)
        AND (w.owner IS NULL OR w.owner <> ALL(%(alive)s))
)
SELECT {", ".join("c." + c.strip() for c in RUN_COLS.split(","))},
    u.name IS NULL OR (
        (u.worker_concurrency IS NULL OR c.n_any <= u.worker_concurrency - u.mine)
        AND (c.resumed OR (
            (u.concurrency IS NULL OR c.n_new <= u.concurrency - u.running)
            AND (u.rate_limit IS NULL OR c.n_new <= u.rate_limit - u.recent)))) AS allowed
FROM candidates AS c LEFT JOIN used AS u ON u.name = c.queue
ORDER BY c.created_at, c.id
"""


def pick(
    con: Con,
    *,
    engine_id: str,
    kinds: Sequence[str],
    queues: Sequence[str],
    alive: Sequence[str],
    now: float,
) -> tuple[list[RunRow], bool]:
    """(The runs the claim may take, oldest first; whether others were held back by a
    queue's limits). Claimers of the same limited queues take turns until commit."""
    if not kinds or not queues:
        return [], False
    limited = con.execute(
        "SELECT name FROM queues WHERE name = ANY(%s) ORDER BY name", [list(queues)]
    ).fetchall()
    for (name,) in limited:
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))", [name, _QUEUE_SEED])
    params: dict[str, Any] = {
        "queues": list(queues),
        "kinds": list(kinds),
        "alive": list(alive),
        "engine": engine_id,
        "now": to_ts(now),
        "active": _ACTIVE,
    }
    rows = con.execute(_PICK, params).fetchall()
    width = len(RUN_COLS.split(","))
    runs = [run_row(r[:width]) for r in rows if r[width]]
    return runs, len(runs) < len(rows)


def take(
    con: Con,
    execution_ids: Sequence[str],
    engine_id: str,
    alive: Sequence[str],
    now: float,
    limit: int | None = None,
) -> set[str]:
    """Take the oldest ``limit`` of these runs whose owner is none or not alive, skipping
    rows another transaction holds (the next ones are taken instead); a first claim stamps
    ``claimed_at`` (the run holds a slot of its queue from then on)."""
    if not execution_ids or limit == 0:
        return set()
    rows = con.execute(
        "WITH chosen AS (SELECT id FROM workflow_executions WHERE id = ANY(%s) "
        "AND (owner IS NULL OR owner <> ALL(%s)) ORDER BY created_at, id "
        f"{'' if limit is None else f'LIMIT {int(limit)} '}FOR UPDATE SKIP LOCKED) "
        "UPDATE workflow_executions AS w SET owner = %s, "
        "claimed_at = coalesce(w.claimed_at, %s) FROM chosen WHERE w.id = chosen.id "
        "RETURNING w.id",
        [list(execution_ids), list(alive), engine_id, to_ts(now)],
    ).fetchall()
    return {r[0] for r in rows}


def rate_retry_at(con: Con, queues: Sequence[str], now: float) -> float | None:
    """When the earliest full rate window among ``queues`` lets one more run start (its
    oldest claim leaves the window), or None when no rate limit is reached."""
    row = con.execute(
        "SELECT min(oldest + make_interval(secs => rate_period)) FROM ("
        "  SELECT q.rate_period, min(w.claimed_at) AS oldest FROM queues AS q"
        "  JOIN workflow_executions AS w ON w.queue = q.name"
        "  WHERE q.name = ANY(%s) AND q.rate_limit IS NOT NULL"
        "    AND w.claimed_at > %s - make_interval(secs => q.rate_period)"
        "  GROUP BY q.name, q.rate_period, q.rate_limit HAVING count(*) >= q.rate_limit) AS f",
        [list(queues), to_ts(now)],
    ).fetchone()
    return None if row is None else epoch(row[0])


def claim(con: Con, request: Claim, living: Callable[[EngineRow, float], bool]) -> Claimed:
    """Apply a :class:`Claim`; ``living(engine, heartbeat age)`` judges the registered
    engines (those that are not alive are marked stopped)."""
    engines = ops.live_engine_rows(con)
    alive_rows = [row for row, age in engines if row.id == request.engine_id or living(row, age)]
    alive = [row.id for row in alive_rows]
    ops.stop_engines(con, [row.id for row, _ in engines if row.id not in alive])
    now = time.time() if request.now is None else request.now
    picked, held_back = pick(
        con,
        engine_id=request.engine_id,
        kinds=request.kinds,
        queues=request.queues,
        alive=alive,
        now=now,
    )
    ids = [row.id for row in picked]
    taken = take(con, ids, request.engine_id, alive, now, request.limit)
    rows = [replace(row, owner=request.engine_id) for row in picked if row.id in taken]
    histories = ops.load_histories(con, [row.id for row in rows])
    # Left waiting: by a limit, or because another transaction held its row.
    more = held_back or len(rows) < len(picked)
    retry_at = rate_retry_at(con, request.queues, now) if held_back else None
    return Claimed([(row, histories[row.id]) for row in rows], alive_rows, more, retry_at)


# -- the queues' rows ------------------------------------------------------------------


def set_queue(con: Con, queue: QueueRow, now: float) -> None:
    con.execute(
        "INSERT INTO queues VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
        "concurrency = excluded.concurrency, worker_concurrency = excluded.worker_concurrency, "
        "rate_limit = excluded.rate_limit, rate_period = excluded.rate_period, "
        "updated_at = excluded.updated_at",
        [queue.name, queue.concurrency, queue.worker_concurrency, queue.rate_limit,
         queue.rate_period, to_ts(now)],
    )  # fmt: skip


def list_queues(con: Con) -> list[QueueRow]:
    rows = con.execute(
        "SELECT name, concurrency, worker_concurrency, rate_limit, rate_period FROM queues "
        "ORDER BY name"
    ).fetchall()
    return [QueueRow(*r) for r in rows]
