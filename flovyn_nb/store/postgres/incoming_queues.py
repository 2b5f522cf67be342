"""The PostgreSQL side of issue 17's catalog and queues (branch i17-worker: definitions,
queue limits, claims within them), duck-typed like ``incoming.py``: the DDL is
``incoming.DEFINITIONS`` and ``incoming.QUEUES``; these statements return plain rows that
the integrator wraps in that branch's types (``DefinitionRow``, ``QueueRow``, ``Picked``).

What a server needs beyond the DuckDB statements: concurrent claimers. A queue's
``concurrency`` and ``rate_limit`` count runs across engines, so the claimers of a limited
queue take turns (a transaction advisory lock per queue, taken in name order) around
the count and the take; the picked rows are locked ``FOR UPDATE SKIP LOCKED``. A new
definition's version is numbered under a lock on its (type, kind).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flovyn_nb.model import ACTIVE_STATUSES
from flovyn_nb.store.postgres.ops import RUN_COLS, Con, epoch, to_ts

# The run columns of the queues branch: this branch's and the queue.
QUEUED_RUN_COLS = RUN_COLS + ", queue"
_ACTIVE = [s.value for s in ACTIVE_STATUSES]


def record_definitions(
    con: Con, definitions: Sequence[Any], engine_id: str | None, queues: Sequence[str], now: float
) -> None:
    """Apply ``Store.record_definitions`` (``NewDefinition``\\ s, duck-typed)."""
    stamp = to_ts(now)
    for d in definitions:
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", [f"{d.type}/{d.kind}"])
        moved = con.execute(
            "UPDATE definitions SET last_registered_at = %s "
            "WHERE type = %s AND kind = %s AND source_hash = %s RETURNING version",
            [stamp, d.type, d.kind, d.source_hash],
        ).fetchall()
        if not moved:
            con.execute(
                "INSERT INTO definitions (type, kind, source_hash, version, description, "
                "source, input_schema, output_schema, registered_at, last_registered_at) "
                "SELECT %s, %s, %s, coalesce(max(version), 0) + 1, %s, %s, %s::json, %s::json, "
                "%s, %s FROM definitions WHERE type = %s AND kind = %s",
                [d.type, d.kind, d.source_hash, d.description, d.source, d.input_schema_json,
                 d.output_schema_json, stamp, stamp, d.type, d.kind],
            )  # fmt: skip
        if engine_id is not None:
            con.execute(
                "INSERT INTO definition_servers VALUES (%s, %s, %s, %s, %s::json, %s) "
                "ON CONFLICT (engine_id, type, kind) DO UPDATE SET "
                "source_hash = excluded.source_hash, queues = excluded.queues, "
                "registered_at = excluded.registered_at",
                [engine_id, d.type, d.kind, d.source_hash, json.dumps(list(queues)), stamp],
            )


def list_definitions(
    con: Con, *, type: str | None, kind: str | None, all_versions: bool
) -> list[tuple[Any, ...]]:
    """Rows (type, kind, version, source_hash, description, source, input_schema,
    output_schema, registered_at, last_registered_at, servers); ``servers`` is a list of
    (engine id, pid, host, proc_start, heartbeat_at, source_hash, queues)."""
    where, params = ["TRUE"], []
    if type is not None:
        where.append("d.type = %s")
        params.append(type)
    if kind is not None:
        where.append("d.kind = %s")
        params.append(kind)
    rows = con.execute(
        "SELECT * FROM (SELECT d.type, d.kind, d.version, d.source_hash, d.description, "
        "d.source, d.input_schema, d.output_schema, d.registered_at, d.last_registered_at, "
        "row_number() OVER (PARTITION BY d.type, d.kind "
        "ORDER BY d.last_registered_at DESC, d.version DESC) AS n "
        f"FROM definitions AS d WHERE {' AND '.join(where)}) AS ranked "
        f"{'' if all_versions else 'WHERE n = 1 '}"
        "ORDER BY type DESC, kind, last_registered_at DESC, version DESC",
        params,
    ).fetchall()
    servers: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for s in con.execute(
        "SELECT s.type, s.kind, e.id, e.pid, e.host, e.proc_start, e.heartbeat_at, "
        "s.source_hash, s.queues FROM definition_servers AS s "
        "JOIN engines AS e ON e.id = s.engine_id WHERE NOT e.stopped ORDER BY e.started_at"
    ).fetchall():
        servers.setdefault((s[0], s[1]), []).append((*s[2:6], epoch(s[6]), s[7], s[8]))
    return [(*r[:8], epoch(r[8]), epoch(r[9]), servers.get((r[0], r[1]), [])) for r in rows]


def set_queue(con: Con, queue: Any, now: float) -> None:
    """Apply ``Store.set_queue`` (a ``QueueRow``, duck-typed)."""
    con.execute(
        "INSERT INTO queues VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
        "concurrency = excluded.concurrency, worker_concurrency = excluded.worker_concurrency, "
        "rate_limit = excluded.rate_limit, rate_period = excluded.rate_period, "
        "updated_at = excluded.updated_at",
        [queue.name, queue.concurrency, queue.worker_concurrency, queue.rate_limit,
         queue.rate_period, to_ts(now)],
    )  # fmt: skip


def list_queues(con: Con) -> list[tuple[Any, ...]]:
    """(name, concurrency, worker_concurrency, rate_limit, rate_period) rows by name."""
    return con.execute(
        "SELECT name, concurrency, worker_concurrency, rate_limit, rate_period FROM queues "
        "ORDER BY name"
    ).fetchall()


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
    SELECT {", ".join("w." + c.strip() for c in QUEUED_RUN_COLS.split(","))},
        w.created_at, w.claimed_at IS NOT NULL AS resumed,
        row_number() OVER (PARTITION BY w.queue, w.claimed_at IS NULL
            ORDER BY w.created_at, w.id) AS n_new,
        row_number() OVER (PARTITION BY w.queue
            ORDER BY w.claimed_at IS NULL, w.created_at, w.id) AS n_any
    FROM workflow_executions AS w
    WHERE w.status = ANY(%(active)s) AND w.kind = ANY(%(kinds)s) AND w.queue = ANY(%(queues)s)
        AND (w.owner IS NULL OR w.owner <> ALL(%(alive)s))
)
SELECT {", ".join("c." + c.strip() for c in QUEUED_RUN_COLS.split(","))},
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
) -> tuple[list[tuple[Any, ...]], bool]:
    """(rows of ``QUEUED_RUN_COLS`` the claim may take, oldest first; whether others were
    held back by a limit). Claimers of the same limited queues take turns until commit."""
    if not kinds or not queues:
        return [], False
    limited = con.execute(
        "SELECT name FROM queues WHERE name = ANY(%s) ORDER BY name", [list(queues)]
    ).fetchall()
    for (name,) in limited:
        con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 2))", [name])
    rows = con.execute(
        _PICK,
        {
            "queues": list(queues),
            "kinds": list(kinds),
            "alive": list(alive),
            "engine": engine_id,
            "now": to_ts(now),
            "active": _ACTIVE,
        },
    ).fetchall()
    allowed = [r[:-1] for r in rows if r[-1]]
    return allowed, len(allowed) < len(rows)


def take(
    con: Con, execution_ids: Sequence[str], engine_id: str, alive: Sequence[str], now: float
) -> set[str]:
    """Take these runs where their owner is none or not alive, skipping rows another
    transaction holds; a first claim stamps ``claimed_at``."""
    if not execution_ids:
        return set()
    rows = con.execute(
        "WITH chosen AS (SELECT id FROM workflow_executions WHERE id = ANY(%s) "
        "AND (owner IS NULL OR owner <> ALL(%s)) FOR UPDATE SKIP LOCKED) "
        "UPDATE workflow_executions AS w SET owner = %s, "
        "claimed_at = coalesce(w.claimed_at, %s) FROM chosen WHERE w.id = chosen.id "
        "RETURNING w.id",
        [list(execution_ids), list(alive), engine_id, to_ts(now)],
    ).fetchall()
    return {r[0] for r in rows}


def rate_retry_at(con: Con, queues: Sequence[str], now: float) -> float | None:
    """When the earliest full rate window among ``queues`` lets one more run start."""
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
