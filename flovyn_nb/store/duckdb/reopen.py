"""The statement of a retry: an ended run becomes runnable again (``ReopenRun``)."""

from __future__ import annotations

from typing import Any

from flovyn_nb.errors import InvalidInput, UnknownWorkflow
from flovyn_nb.model import RunStatus
from flovyn_nb.store.duckdb import ops
from flovyn_nb.store.protocol import ReopenRun
from flovyn_nb.store.rows import RunRow

Con = Any  # a DuckDB connection (cursor)


def reopen_run(con: Con, request: ReopenRun) -> RunRow:
    """Apply a :class:`ReopenRun` (checked here, inside the transaction)."""
    row = con.execute(
        f"SELECT {ops._RUN_COLS} FROM workflow_executions WHERE id = ?", [request.execution_id]
    ).fetchone()
    if row is None:
        raise UnknownWorkflow(
            f"no run with execution id {request.execution_id!r}",
            workflow_id=request.execution_id,
        )
    run = ops._run_row(row)
    check_reopen(run, request.statuses)
    con.execute(
        "UPDATE workflow_executions SET status = ?, owner = NULL, output = NULL, error = NULL, "
        "cancel_requested = FALSE, source_hash = coalesce(?, source_hash), updated_at = ? "
        "WHERE id = ?",
        [RunStatus.RUNNING.value, request.source_hash, ops.to_ts(request.now), run.id],
    )
    return run


def check_reopen(run: RunRow, statuses: tuple[RunStatus, ...]) -> None:
    """The rule every backend applies: only a run in one of ``statuses`` is reopened.

    Raises:
        InvalidInput: naming the run's status and what can be retried.
    """
    if run.status not in statuses:
        allowed = " or ".join(s.value.lower() for s in statuses)
        raise InvalidInput(
            f"run {run.workflow_id!r} is {run.status.value.lower()}: only a {allowed} run "
            "can be retried"
            + (
                "; fork it instead (fn.fork_run) to run steps again in a new run"
                if run.status is RunStatus.COMPLETED
                else "; wait for it to end, or cancel it first"
                if not run.status.is_terminal
                else ""
            )
        )
