"""The statement of a retry: an ended run becomes runnable again (``ReopenRun``)."""

from __future__ import annotations

from typing import Any

from flovyn_nb.errors import UnknownWorkflow
from flovyn_nb.model import RunStatus
from flovyn_nb.store.duckdb import ops
from flovyn_nb.store.protocol import ReopenRun
from flovyn_nb.store.reopen_rules import check_reopen
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
    if request.forget_promises:
        con.execute(
            "DELETE FROM promises WHERE execution_id = ? AND id IN (SELECT unnest(?::VARCHAR[]))",
            [run.id, list(request.forget_promises)],
        )
    return run
