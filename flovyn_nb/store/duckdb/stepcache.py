"""The step cache of ``@task(cache=True)`` in DuckDB: remember a step, find one."""

from __future__ import annotations

from flovyn_nb.store.duckdb.ops import Con, _json, to_ts
from flovyn_nb.store.protocol import CachedStep, CacheStep


def remember(con: Con, step: CacheStep) -> None:
    con.execute(
        "INSERT INTO step_cache VALUES (?, ?, ?, ?, ?, ?, ?)",
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


def find(con: Con, task_kind: str, source_hash: str, input_hash: str) -> CachedStep | None:
    # The join drops steps of runs that were deleted since.
    row = con.execute(
        """SELECT r.workflow_id, c.execution_id, c.task_execution_id, c.output
        FROM step_cache c JOIN workflow_executions r ON r.id = c.execution_id
        WHERE c.input_hash = ? AND c.task_kind = ? AND c.source_hash = ?
        ORDER BY c.created_at DESC LIMIT 1""",
        [input_hash, task_kind, source_hash],
    ).fetchone()
    if row is None:
        return None
    return CachedStep(row[0], row[1], row[2], _json(row[3]))
