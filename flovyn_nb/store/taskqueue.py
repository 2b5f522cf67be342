"""Tasks queued for other engines: ``ctx.schedule(task, x, queue="gpu")`` from a run whose
engine does not serve ``"gpu"``.

The run's owner records ``TASK_SCHEDULED`` and, in the same commit, a row in the store's
``task_queue`` (:class:`QueueTask`). An engine that serves the queue and has the task
registered claims the row (:class:`ClaimTasks`), runs the attempts, says how far it got
(:class:`TaskProgress`: a claimer that dies is replaced, from the next attempt on) and
writes the outcome into the row (:class:`FinishTask`). The row is an inbox of the run: its
owner reads it (:meth:`Store.queued_tasks`), records ``TASK_COMPLETED`` / ``TASK_FAILED``
in the history and wakes the workflow. Cancelling the run closes its open rows
(:class:`CancelTasks`); a claimer learns it from its next write.

A claimer holds a row while it lives, judged as runs are (``alive``: on this host its
PID, elsewhere its heartbeat); a row whose claimer is gone is claimed again. The rows,
intents and the states here are the same for every backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from flovyn_nb.store.rows import EngineRow

__all__ = [
    "CLOSED",
    "OPEN",
    "CancelTasks",
    "ClaimTasks",
    "FinishTask",
    "QueueTask",
    "QueuedTask",
    "TaskProgress",
]

# A row's states: waiting for a claimer, claimed (attempts run), and the three ends.
QUEUED, RUNNING = "QUEUED", "RUNNING"
COMPLETED, FAILED, CANCELLED = "COMPLETED", "FAILED", "CANCELLED"
OPEN = (QUEUED, RUNNING)
CLOSED = (COMPLETED, FAILED, CANCELLED)


@dataclass(frozen=True, slots=True)
class QueueTask:
    """Put a scheduled task in ``queue`` for an engine that serves it (a second one with
    the same id changes nothing). Result: None. Rings the work bell."""

    task_execution_id: str
    execution_id: str  # the run that scheduled it (and receives its outcome)
    workflow_id: str
    kind: str
    queue: str
    input_json: str
    max_attempts: int
    timeout_seconds: float | None
    retry_json: str | None  # the retry policy in force for this call, as JSON text
    now: float


@dataclass(frozen=True, slots=True)
class ClaimTasks:
    """Take up to ``limit`` open tasks of ``kinds`` in ``queues``, oldest first, whose
    claimer is none or not alive (``alive``, as for :class:`~flovyn_nb.store.Claim`), of
    runs that are active and not cancelled. Result: the rows taken
    (:class:`QueuedTask`, ``attempt``: the attempts started before)."""

    engine_id: str
    kinds: Sequence[str]
    queues: Sequence[str]
    alive: Callable[[EngineRow], bool]
    limit: int
    now: float


@dataclass(frozen=True, slots=True)
class TaskProgress:
    """Attempt ``attempt`` started (``resume_at`` None) or failed and waits for the next
    one until ``resume_at``. Result: whether ``engine_id`` still holds the task (False:
    the run cancelled it, or another engine took it over)."""

    task_execution_id: str
    engine_id: str
    attempt: int
    resume_at: float | None
    now: float


@dataclass(frozen=True, slots=True)
class FinishTask:
    """The task ended (``status`` COMPLETED or FAILED) on attempt ``attempt``. Taken only
    while ``engine_id`` holds the open task. Result: whether it was taken."""

    task_execution_id: str
    engine_id: str
    status: str
    attempt: int
    output_json: str | None
    error_json: str | None
    timed_out: bool
    now: float


@dataclass(frozen=True, slots=True)
class CancelTasks:
    """Close these tasks, if still open, as CANCELLED (their run was cancelled). Result:
    None."""

    task_execution_ids: tuple[str, ...]
    now: float


@dataclass(frozen=True, slots=True)
class QueuedTask:
    """A row of the task queue."""

    id: str  # the task execution id
    execution_id: str
    workflow_id: str
    kind: str
    queue: str
    input: Any  # JSON value
    max_attempts: int
    timeout_seconds: float | None
    retry: Any  # the retry policy as a JSON value, or None
    status: str
    owner: str | None
    attempt: int  # attempts started so far
    resume_at: float | None
    output: Any
    error: Any
    timed_out: bool


TaskIntent = QueueTask | ClaimTasks | TaskProgress | FinishTask | CancelTasks

# Columns of a row as :func:`row` reads them (both backends).
COLS = (
    "id, execution_id, workflow_id, kind, queue, input, max_attempts, timeout_seconds, retry, "
    "status, owner, attempt, resume_at, output, error, timed_out"
)


def row(values: Sequence[Any], *, epoch: Callable[[Any], float | None]) -> QueuedTask:
    """A :class:`QueuedTask` from :data:`COLS` (JSON columns already decoded)."""
    return QueuedTask(
        id=values[0],
        execution_id=values[1],
        workflow_id=values[2],
        kind=values[3],
        queue=values[4],
        input=values[5],
        max_attempts=int(values[6]),
        timeout_seconds=None if values[7] is None else float(values[7]),
        retry=values[8],
        status=values[9],
        owner=values[10],
        attempt=int(values[11]),
        resume_at=epoch(values[12]),
        output=values[13],
        error=values[14],
        timed_out=bool(values[15]),
    )
