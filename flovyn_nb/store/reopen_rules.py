"""The rule every backend applies before reopening a run for a retry (``ReopenRun``)."""

from __future__ import annotations

from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunStatus
from flovyn_nb.store.rows import RunRow

__all__ = ["check_reopen"]


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
