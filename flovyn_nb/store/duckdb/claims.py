"""Claiming runs on DuckDB: one statement picks what an engine may take, within the limits
of their queues; a second (compare-and-set) takes them.

The picking statement ranks the claimable runs of each queue (orphans of dead engines
first: they hold a slot of their queue already) and says for each whether the queue's
limits let this engine take it now:

- ``concurrency``: runs of the queue claimed and not ended, across engines;
- ``worker_concurrency``: runs of the queue this engine holds;
- ``rate_limit`` per ``rate_period``: first claims of the queue within the period.

On a server database the same shape locks the picked rows (``FOR UPDATE SKIP LOCKED``);
here the file has one writer at a time, so the claim's transaction is the lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from flovyn_nb.model import ACTIVE_STATUSES
from flovyn_nb.store.duckdb.ops import _RUN_COLS, _run_row, epoch, to_ts
from flovyn_nb.store.rows import RunRow

Con = duckdb.DuckDBPyConnection

_ACTIVE = "(" + ",".join(f"'{s.value}'" for s in ACTIVE_STATUSES) + ")"

_PICK = f"""
WITH limits AS (
    SELECT * FROM queues WHERE name IN (SELECT unnest($queues::VARCHAR[]))
), used AS (
    SELECT l.name, l.concurrency, l.worker_concurrency, l.rate_limit, l.rate_period,
        count(w.id) FILTER (WHERE w.status IN {_ACTIVE} AND w.claimed_at IS NOT NULL)
            AS running,
        count(w.id) FILTER (WHERE w.status IN {_ACTIVE} AND w.owner = $engine) AS mine,
        count(w.id) FILTER (WHERE w.claimed_at > $now - to_seconds(l.rate_period)) AS recent
    FROM limits AS l LEFT JOIN workflow_executions AS w ON w.queue = l.name
    GROUP BY ALL
), candidates AS (
    SELECT {", ".join("w." + c.strip() for c in _RUN_COLS.split(","))},
        w.created_at, w.claimed_at IS NOT NULL AS resumed,
        row_number() OVER (PARTITION BY w.queue, w.claimed_at IS NULL
            ORDER BY w.created_at, w.id) AS n_new,
        row_number() OVER (PARTITION BY w.queue
            ORDER BY w.claimed_at IS NULL, w.created_at, w.id) AS n_any
    FROM workflow_executions AS w
    WHERE w.status IN {_ACTIVE}
        AND w.kind IN (SELECT unnest($kinds::VARCHAR[]))
        AND w.queue IN (SELECT unnest($queues::VARCHAR[]))
        AND (w.owner IS NULL OR NOT list_contains($alive::VARCHAR[], w.owner))
)
SELECT c.* EXCLUDE (created_at, resumed, n_new, n_any),
    u.name IS NULL OR (
        (u.worker_concurrency IS NULL OR c.n_any <= u.worker_concurrency - u.mine)
        AND (c.resumed OR (
            (u.concurrency IS NULL OR c.n_new <= u.concurrency - u.running)
            AND (u.rate_limit IS NULL OR c.n_new <= u.rate_limit - u.recent)))) AS allowed
FROM candidates AS c LEFT JOIN used AS u ON u.name = c.queue
ORDER BY c.created_at, c.id
"""


@dataclass(frozen=True, slots=True)
class Picked:
    """The runs the claim may take, oldest first; whether others were held back by a
    queue's limits."""

    runs: list[RunRow]
    held_back: bool


def pick(
    con: Con,
    *,
    engine_id: str,
    kinds: Sequence[str],
    queues: Sequence[str],
    alive: Sequence[str],
    now: float,
) -> Picked:
    if not kinds or not queues:
        return Picked([], False)
    params: dict[str, Any] = {
        "queues": list(queues),
        "kinds": list(kinds),
        "alive": list(alive),
        "engine": engine_id,
        "now": to_ts(now),
    }
    rows = con.execute(_PICK, params).fetchall()
    width = len(_RUN_COLS.split(","))
    runs = [_run_row(r[:width]) for r in rows if r[width]]
    return Picked(runs, held_back=len(runs) < len(rows))


def rate_retry_at(con: Con, queues: Sequence[str], now: float) -> float | None:
    """When the earliest full rate window among ``queues`` lets one more run start (its
    oldest claim leaves the window), or None when no rate limit is reached."""
    row = con.execute(
        "SELECT min(oldest + to_seconds(rate_period)) FROM ("
        "  SELECT q.rate_period, min(w.claimed_at) AS oldest FROM queues AS q"
        "  JOIN workflow_executions AS w ON w.queue = q.name"
        "  WHERE q.name IN (SELECT unnest(?::VARCHAR[])) AND q.rate_limit IS NOT NULL"
        "    AND w.claimed_at > ?::TIMESTAMP - to_seconds(q.rate_period)"
        "  GROUP BY q.name, q.rate_period, q.rate_limit HAVING count(*) >= q.rate_limit)",
        [list(queues), to_ts(now)],
    ).fetchone()
    return None if row is None else epoch(row[0])


def take(
    con: Con, execution_ids: Sequence[str], engine_id: str, alive: Sequence[str], now: float
) -> set[str]:
    """Take these runs where their owner is none or not alive (one statement); a first
    claim stamps ``claimed_at`` (the run holds a slot of its queue from then on)."""
    if not execution_ids:
        return set()
    rows = con.execute(
        "UPDATE workflow_executions SET owner = ?, claimed_at = coalesce(claimed_at, ?) "
        "WHERE id IN (SELECT unnest(?::VARCHAR[])) "
        "AND (owner IS NULL OR NOT list_contains(?::VARCHAR[], owner)) RETURNING id",
        [engine_id, to_ts(now), list(execution_ids), list(alive)],
    ).fetchall()
    return {r[0] for r in rows}
