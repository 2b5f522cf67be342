"""Which bells a commit rings, the same on every backend (see ``Store.work_bell`` and
``Store.slot_bell``): decided from the changes alone, before or after they apply."""

from __future__ import annotations

from collections.abc import Sequence

from flovyn_nb.store.protocol import Change, ReleaseRun, ReopenRun
from flovyn_nb.store.taskqueue import QueueTask

__all__ = ["ends_runs", "leaves_work"]


def leaves_work(changes: Sequence[Change]) -> bool:
    """Whether the commit left work waiting for an engine: a new unowned run (an engine-less
    start, a fork from the CLI, a child on a queue its parent's engine does not serve), a
    run handed back, a run reopened by a retry, or a task put in the task queue."""
    return any(
        (c.new_run is not None and c.new_run.owner is None)
        or any(isinstance(i, ReleaseRun | ReopenRun | QueueTask) for i in c.intents)
        for c in changes
    )


def ends_runs(changes: Sequence[Change]) -> bool:
    """Whether the commit ended runs (a slot of their queue is free again)."""
    return any(
        (c.run_update is not None and c.run_update.status.is_terminal)
        or any(u.status.is_terminal for u in c.statuses)
        for c in changes
    )
