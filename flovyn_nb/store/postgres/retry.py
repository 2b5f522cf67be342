"""The PostgreSQL statements of retries and the step cache: ``ReopenRun`` (an ended run
runnable again) and ``CacheStep`` / ``Store.find_cached_step``; the twin of
``store/duckdb/reopen.py`` and ``store/duckdb/stepcache.py``."""

from __future__ import annotations

from flovyn_nb.errors import UnknownWorkflow
from flovyn_nb.model import RunStatus
from flovyn_nb.store.postgres.ops import RUN_COLS, Con, run_row, to_ts
from flovyn_nb.store.protocol import CachedStep, CacheStep, ReopenRun
from flovyn_nb.store.reopen_rules import check_reopen
from flovyn_nb.store.rows import RunRow


def remember_step(con: Con, step: CacheStep) -> None:
    """Apply a :class:`CacheStep`."""
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
) -> CachedStep | None:
    """The newest cached step with these keys in a run that still exists."""
    row = con.execute(
        "SELECT r.workflow_id, c.execution_id, c.task_execution_id, c.output "
        "FROM step_cache c JOIN workflow_executions r ON r.id = c.execution_id "
        "WHERE c.input_hash = %s AND c.task_kind = %s AND c.source_hash = %s "
        "ORDER BY c.created_at DESC LIMIT 1",
        [input_hash, task_kind, source_hash],
    ).fetchone()
    return None if row is None else CachedStep(row[0], row[1], row[2], row[3])


def reopen_run(con: Con, request: ReopenRun) -> RunRow:
    """Apply a :class:`ReopenRun`: the run's row is locked, checked, then made runnable
    again. Returns the row as it was.

    Raises:
        UnknownWorkflow: no run with that execution id.
        InvalidInput: the run's status is not one the request allows.
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
    check_reopen(run, request.statuses)
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
