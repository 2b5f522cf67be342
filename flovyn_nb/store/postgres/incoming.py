"""The PostgreSQL side of store changes made on other branches at the same time as this
backend: issue 14's cancel reasons, issue 15's step cache and retries (``ReopenRun``),
issue 16's run pages (``query_runs``), issue 17's definitions and queues tables.

Their types (``CacheStep``, ``ReopenRun``, ``RunQuery``, …) are not on this branch, so the
statements here take them duck-typed (attributes of the same names) and return plain
values. When the branches merge, the integrator adds the DDL steps to
``schema.MIGRATIONS`` under the version numbers the DuckDB steps get, and calls these
functions from ``backend._do`` / :class:`PostgresStore` as the DuckDB backend calls its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from flovyn_nb.errors import UnknownWorkflow
from flovyn_nb.model import RunInfo, RunStatus
from flovyn_nb.store.postgres.ops import RUN_COLS, Con, run_row, to_ts
from flovyn_nb.store.postgres.queries import _RUN_INFO_COLS, _run_info
from flovyn_nb.store.rows import RunRow

# -- DDL: one list per step, in the DuckDB steps' order of the branch that made them ---------

CANCEL_REASON = ["ALTER TABLE workflow_executions ADD COLUMN cancel_reason TEXT"]  # issue 14

STEP_CACHE = [  # issue 15
    """CREATE TABLE step_cache (
        task_kind TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        input_hash TEXT NOT NULL,
        execution_id TEXT NOT NULL,
        task_execution_id TEXT NOT NULL,
        output JSON,
        created_at TIMESTAMPTZ NOT NULL)""",
    "CREATE INDEX step_cache_key ON step_cache (input_hash, task_kind, source_hash)",
]

DEFINITIONS = [  # issue 17 (i17-worker, its v4)
    """CREATE TABLE definitions (
        type TEXT NOT NULL,
        kind TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        version INTEGER NOT NULL,
        description TEXT,
        source TEXT,
        input_schema JSON,
        output_schema JSON,
        registered_at TIMESTAMPTZ NOT NULL,
        last_registered_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (type, kind, source_hash))""",
    """CREATE TABLE definition_servers (
        engine_id TEXT NOT NULL,
        type TEXT NOT NULL,
        kind TEXT NOT NULL,
        source_hash TEXT NOT NULL,
        queues JSON NOT NULL,
        registered_at TIMESTAMPTZ NOT NULL,
        PRIMARY KEY (engine_id, type, kind))""",
]

QUEUES = [  # issue 17 (i17-worker, its v5)
    "ALTER TABLE workflow_executions ADD COLUMN queue TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE workflow_executions ADD COLUMN claimed_at TIMESTAMPTZ",
    "UPDATE workflow_executions SET claimed_at = created_at",
    """CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        concurrency INTEGER,
        worker_concurrency INTEGER,
        rate_limit INTEGER,
        rate_period DOUBLE PRECISION,
        updated_at TIMESTAMPTZ NOT NULL)""",
]

# -- issue 14: a cancel request keeps its reason ---------------------------------------------


def request_cancel(con: Con, execution_id: str, reason: str = "") -> None:
    """Set the cancel flag; the first reason given stays (the owner may have recorded it)."""
    con.execute(
        "UPDATE workflow_executions SET cancel_requested = TRUE, "
        "cancel_reason = coalesce(cancel_reason, nullif(%s, '')) WHERE id = %s",
        [reason, execution_id],
    )


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


# -- issue 15: the step cache and reopening a run for a retry -----------------------------------


def remember_step(con: Con, step: Any) -> None:
    """Apply a ``CacheStep``."""
    con.execute(
        "INSERT INTO step_cache VALUES (%s, %s, %s, %s, %s, %s::json, %s)",
        [
            step.task_kind,
            step.source_hash,
            step.input_hash,
            step.execution_id,
            step.task_execution_id,
            step.output,
            to_ts(step.now),
        ],
    )


def find_cached_step(
    con: Con, task_kind: str, source_hash: str, input_hash: str
) -> tuple[str, str, str, Any] | None:
    """(workflow id, execution id, task execution id, output) of the newest cached step
    with these keys in a run that still exists (``CachedStep(*row)``)."""
    row = con.execute(
        "SELECT r.workflow_id, c.execution_id, c.task_execution_id, c.output "
        "FROM step_cache c JOIN workflow_executions r ON r.id = c.execution_id "
        "WHERE c.input_hash = %s AND c.task_kind = %s AND c.source_hash = %s "
        "ORDER BY c.created_at DESC LIMIT 1",
        [input_hash, task_kind, source_hash],
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


def reopen_run(
    con: Con, request: Any, check: Callable[[RunRow, tuple[RunStatus, ...]], None]
) -> RunRow:
    """Apply a ``ReopenRun``: the run's row is locked, checked by ``check``
    (``reopen_rules.check_reopen``), then made runnable again. Returns the row as it was.

    Raises:
        UnknownWorkflow: no run with that execution id; what ``check`` raises.
    """
    row = con.execute(
        f"SELECT {RUN_COLS} FROM workflow_executions WHERE id = %s FOR UPDATE",
        [request.execution_id],
    ).fetchone()
    if row is None:
        raise UnknownWorkflow(
            f"no run with execution id {request.execution_id!r}",
            workflow_id=request.execution_id,
        )
    run = run_row(row)
    check(run, request.statuses)
    con.execute(
        "UPDATE workflow_executions SET status = %s, owner = NULL, output = NULL, "
        "error = NULL, cancel_requested = FALSE, source_hash = coalesce(%s, source_hash), "
        "updated_at = %s WHERE id = %s",
        [RunStatus.RUNNING.value, request.source_hash, to_ts(request.now), run.id],
    )
    if request.forget_promises:
        con.execute(
            "DELETE FROM promises WHERE execution_id = %s AND id = ANY(%s)",
            [run.id, list(request.forget_promises)],
        )
    return run


# -- issue 16: a page of runs ------------------------------------------------------------------

# Sort keys as SQL expressions (never user text in the statement: only these).
_ORDER = {
    "created": "created_at",
    "updated": "updated_at",
    "duration": "(updated_at - created_at)",
    "status": "status",
    "workflow_id": "workflow_id",
    "kind": "kind",
}


def _filters(query: Any, *, with_status: bool) -> tuple[str, list[Any]]:
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


def query_runs(con: Con, query: Any) -> tuple[list[RunInfo], int, dict[str, int]]:
    """A ``RunQuery``'s page: (runs, total, counts by status); ``RunPage(*result)``."""
    where, params = _filters(query, with_status=True)
    direction = "DESC" if query.descending else "ASC"
    rows = con.execute(
        f"SELECT {_RUN_INFO_COLS} FROM workflow_executions{where} "
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
    return [_run_info(r, []) for r in rows], total, counts
