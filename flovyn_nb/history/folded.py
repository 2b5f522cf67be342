"""What :func:`flovyn_nb.history.fold` returns: frozen plain data about one run.

A :class:`FoldedRun` holds the run's status, input, output or error, its :class:`Step`
list (tasks with their :class:`Attempt` list, timers, promises, children, operations,
state changes, received signals), the :class:`Wait` list still open and the earliest
deadline among them. Every class here is a frozen dataclass of plain values, so a fold
made on one thread can be read on any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from flovyn_nb.history.events import JSON
from flovyn_nb.model import RunStatus

__all__ = [
    "Attempt",
    "Deadline",
    "EarlierAttempt",
    "DeadlineKind",
    "Failure",
    "FoldedRun",
    "Step",
    "StepKind",
    "StepStatus",
    "Wait",
    "WaitKind",
]


class StepKind(StrEnum):
    """What a step is (the values are the words the panel and the CLI show)."""

    TASK = "task"
    TIMER = "timer"
    PROMISE = "promise"
    CHILD = "child"
    OPERATION = "operation"  # ctx.run
    STATE = "state"  # ctx.set / ctx.clear
    SIGNAL = "signal"  # a signal the run received (not a command: no step number)


class StepStatus(StrEnum):
    """Where a step stands, as its history says."""

    SCHEDULED = "SCHEDULED"  # task: no attempt started yet
    RUNNING = "RUNNING"  # task attempt or child workflow under way
    RETRYING = "RETRYING"  # task: an attempt failed, the next one is due later
    WAITING = "WAITING"  # timer not fired yet
    PENDING = "PENDING"  # promise without a value yet
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    FIRED = "FIRED"
    RESOLVED = "RESOLVED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"  # promise past its timeout
    RECEIVED = "RECEIVED"  # signal
    SET = "SET"  # state key set
    CLEARED = "CLEARED"  # state key cleared
    ABANDONED = "ABANDONED"  # still open when the run failed around it

    @property
    def active(self) -> bool:
        """Still under way: it can change, and its deadline (if any) still counts."""
        return self in _ACTIVE


_ACTIVE = frozenset(
    {
        StepStatus.SCHEDULED,
        StepStatus.RUNNING,
        StepStatus.RETRYING,
        StepStatus.WAITING,
        StepStatus.PENDING,
    }
)


class DeadlineKind(StrEnum):
    """What happens at a deadline (the values read well after a step's name)."""

    FIRES = "fires"  # a timer
    TIMES_OUT = "times out"  # a promise's timeout, a task attempt's timeout
    RETRIES = "retries"  # the next attempt of a task


class WaitKind(StrEnum):
    """What a run waits on: a promise's value, a timer, or the next attempt of a task."""

    PROMISE = "promise"
    TIMER = "timer"
    RETRY = "retry"


@dataclass(frozen=True, slots=True)
class Failure:
    """An error as recorded: its type name, message and traceback text."""

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def of(cls, value: JSON) -> Failure | None:
        """The failure an ``error`` payload field describes (None when there is none)."""
        if not isinstance(value, dict):
            return None
        return cls(
            str(value.get("type", "Error")),
            str(value.get("message", "")),
            str(value.get("traceback", "")),
        )

    def as_dict(self) -> dict[str, str]:
        """The JSON form, as payloads and panels carry errors."""
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class Deadline:
    """When an active step moves by itself, and how."""

    at: float  # epoch seconds
    kind: DeadlineKind


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt of a task step (``number`` is 1-based, as ``TaskContext.attempt``)."""

    number: int
    status: StepStatus  # RUNNING, COMPLETED, FAILED, CANCELLED or ABANDONED
    started_at: float | None = None
    ended_at: float | None = None
    deadline: float | None = None  # when the attempt times out (None: no timeout)
    error: Failure | None = None
    timed_out: bool = False
    retry_at: float | None = None  # the failure was retried: the next attempt is due then


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a run, as its history records it.

    ``number`` is the step's 1-based position among the commands the code issued (the
    numbering of ``DeterminismViolation`` and replay); received signals and the internal
    timers of signal waits have none. ``occurrence`` counts steps of the same kind and
    name (the second ``schedule(fetch)`` is ``fetch #2``, see :attr:`label`).

    Fields by kind: tasks have ``input``, ``value`` (the output), ``attempts`` and
    ``max_attempts``; timers have ``due`` (the fire time); promises have ``due`` (the
    timeout, if any), ``schema``, ``value`` or ``error`` and ``resolved_by``; children
    have ``input``, ``child_workflow_id`` and ``value`` or ``error``; operations, state
    changes and signals have ``value``. ``deadline`` is set only while the step is active.
    """

    number: int | None
    key: str  # unique in the run: task execution id, "timer:<id>", "promise:<name>", ...
    kind: StepKind
    name: str
    occurrence: int
    status: StepStatus
    start: float
    end: float | None = None
    deadline: Deadline | None = None
    due: float | None = None
    input: JSON = None
    value: JSON = None
    error: Failure | None = None
    attempts: tuple[Attempt, ...] = ()
    max_attempts: int = 0
    schema: JSON = None
    resolved_by: str | None = None
    child_workflow_id: str | None = None
    # a task step reused from an earlier identical step (@task(cache=True)): where its
    # output was recorded, {"workflowId": ..., "taskExecutionId": ...}; nothing ran
    cached_from: JSON = None

    @property
    def label(self) -> str:
        """The name, numbered when the same name came before (``fetch #2``)."""
        return self.name if self.occurrence == 1 else f"{self.name} #{self.occurrence}"

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def attempt_count(self) -> int:
        """The highest attempt number recorded (0 before the first attempt starts)."""
        return max((a.number for a in self.attempts), default=0)


@dataclass(frozen=True, slots=True)
class Wait:
    """Something the run waits on that moves by itself or by someone outside the run."""

    kind: WaitKind
    key: str  # the key of the step it belongs to
    name: str  # promise name, timer id or task kind
    since: float
    deadline: float | None  # promise timeout, timer fire time, next attempt (None: none)


@dataclass(frozen=True, slots=True)
class EarlierAttempt:
    """An attempt of the run that a retry superseded, as it stood when it was retried.

    ``number`` is 1 for the first attempt; ``steps`` are numbered as they were then;
    ``from_step`` is the step the next attempt ran again from (None: only the code after
    the last step), ``reason`` why it was retried, ``retried_at`` when.
    """

    number: int
    status: RunStatus
    error: Failure | None
    steps: tuple[Step, ...]
    ended_at: float | None
    retried_at: float
    from_step: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class FoldedRun:
    """What a run's history says about it (see the module docstring).

    ``status`` follows the history as the engine writes the run row: PENDING before
    ``WORKFLOW_STARTED``, WAITING from a timer start or promise creation until a timer
    fires or a promise settles, and the terminal status once the run ended. A run row may
    be ahead of its events (a run ended elsewhere); callers that hold the row decide.
    """

    status: RunStatus = RunStatus.PENDING
    workflow_id: str | None = None
    kind: str | None = None
    input: JSON = None
    source_hash: str | None = None
    parent_execution_id: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    output: JSON = None  # what the code returned (completed, or cancelled and returned)
    error: Failure | None = None
    cancel_requested: bool = False
    cancel_reason: str = ""  # as the cancel request gave it (WorkflowCancelled.reason)
    steps: tuple[Step, ...] = ()
    waits: tuple[Wait, ...] = ()
    next_deadline: float | None = None  # the earliest deadline among ``waits``
    last_seq: int = 0
    # A retried run: its attempt number (1 for a run never retried) and the attempts
    # before, oldest first; ``steps`` are the current attempt's (reused steps included).
    attempt: int = 1
    earlier: tuple[EarlierAttempt, ...] = ()
    # A fork: the workflow id it was forked from and the step it ran again from.
    forked_from: str | None = None
    from_step: int | None = None

    @property
    def commands(self) -> tuple[Step, ...]:
        """The steps the code issued (those with a number), in order."""
        return tuple(step for step in self.steps if step.number is not None)

    @property
    def pending_promises(self) -> tuple[Step, ...]:
        return tuple(
            s for s in self.steps if s.kind is StepKind.PROMISE and s.status is StepStatus.PENDING
        )

    def step(self, number: int) -> Step:
        """The step with that 1-based number.

        Raises:
            KeyError: the history has no step with that number.
        """
        for candidate in self.steps:
            if candidate.number == number:
                return candidate
        raise KeyError(number)
