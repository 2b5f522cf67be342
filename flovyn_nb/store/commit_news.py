"""What a commit tells other processes through its doorbell ring (the records of
:mod:`flovyn_nb.store.news`), decided from its changes alone, the same on every backend."""

from __future__ import annotations

from collections.abc import Sequence

from flovyn_nb.store.news import PENDING, News, encode
from flovyn_nb.store.protocol import (
    CacheStep,
    Change,
    Claim,
    FlagCancel,
    Heartbeat,
    MarkSignalDelivered,
    ReleaseRun,
    ReopenRun,
    RequestCancel,
    SendSignal,
    SettlePromise,
)
from flovyn_nb.store.taskqueue import CancelTasks, ClaimTasks, FinishTask, QueueTask, TaskProgress

__all__ = ["news", "said"]

# Intents that change nothing a live feed shows (owners, heartbeats, inbox bookkeeping,
# the task queue's rows: the run's own history says when a queued task is scheduled and
# when its outcome is recorded, and those events ring as the history moving).
_QUIET = (
    ReleaseRun,
    Heartbeat,
    Claim,
    MarkSignalDelivered,
    CacheStep,
    QueueTask,
    ClaimTasks,
    TaskProgress,
    FinishTask,
    CancelTasks,
)


def news(changes: Sequence[Change]) -> list[News] | None:
    """What the commit of ``changes`` did, one record per run and promise (a run whose
    history only moved is named once); ``None`` when a record cannot tell it all."""
    said: list[News] = []
    moved: dict[str, None] = {}  # runs whose history moved, in order
    for change in changes:
        if change.timed_out:
            return None  # promise ids only: which run and name is not known here
        if change.new_run is not None:
            run = change.new_run
            # With what a runs list shows of it, so that a browser adds its row at once.
            said.append(
                News(
                    run.execution_id,
                    run.workflow_id,
                    "RUNNING",
                    kind=run.kind,
                    created_at=run.now,
                    queue=run.queue,
                )
            )
        updates = [*change.statuses, *([change.run_update] if change.run_update else [])]
        said.extend(News(u.execution_id, status=u.status.value) for u in updates)
        if change.new_promise is not None:
            promise = change.new_promise
            said.append(News(promise.execution_id, promise=promise.name, promise_status=PENDING))
        moved.update((row.execution_id, None) for row in change.events)
        moved.update((row.execution_id, None) for row in change.logs)
        for intent in change.intents:
            match intent:
                case SettlePromise():
                    said.append(
                        News(
                            "",
                            intent.workflow_id,
                            promise=intent.name,
                            promise_status=intent.status.value,
                        )
                    )
                case RequestCancel() | SendSignal():
                    said.append(News("", intent.workflow_id))
                case ReopenRun():
                    said.append(News(intent.execution_id, status="RUNNING"))
                case FlagCancel():
                    moved[intent.execution_id] = None
                case _ if isinstance(intent, _QUIET):
                    pass
                case _:
                    return None  # promises reset or timed out, other intents: read instead
    named = {n.execution_id for n in said if n.status is not None}
    said += [News(x) for x in moved if x not in named]
    return said


def said(changes: Sequence[Change]) -> str | None:
    """:func:`encode` of :func:`news` (``None`` when either is)."""
    records = news(changes)
    return None if records is None else encode(records)
