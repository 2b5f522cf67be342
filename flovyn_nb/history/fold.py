"""A run's history folded, in one pass, into what it says: status, steps, waits, deadlines.

:func:`fold` reads the events of one run (in ``seq`` order) and returns a
:class:`FoldedRun`: the run's status as the history tells it, its input, output or error,
its steps in the order the code issued them (tasks with every attempt, timers, promises,
child workflows, ``ctx.run`` operations, state changes, and the signals it received), the
waits still open and the earliest of their deadlines. Panels, ``wait_all`` and the CLI
read runs through it, so no caller interprets event types itself.

Everything returned is frozen plain data: safe to hand from the thread that folded it to
any other. The fold is linear in the history's length and never raises on odd payloads
(a panel must show what is there); missing fields read as None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from flovyn_nb.history.events import JSON, Event, command_family, epoch
from flovyn_nb.model import EventType as E
from flovyn_nb.model import RunStatus

__all__ = [
    "Attempt",
    "Deadline",
    "DeadlineKind",
    "Failure",
    "FoldedRun",
    "Step",
    "StepKind",
    "StepStatus",
    "Wait",
    "WaitKind",
    "fold",
]


class StepKind(StrEnum):
    TASK = "task"
    TIMER = "timer"
    PROMISE = "promise"
    CHILD = "child"
    OPERATION = "operation"  # ctx.run
    STATE = "state"  # ctx.set / ctx.clear
    SIGNAL = "signal"  # a signal the run received (not a command: no step number)


class StepStatus(StrEnum):
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
        return {"type": self.type, "message": self.message, "traceback": self.traceback}


@dataclass(frozen=True, slots=True)
class Deadline:
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
    steps: tuple[Step, ...] = ()
    waits: tuple[Wait, ...] = ()
    next_deadline: float | None = None  # the earliest deadline among ``waits``
    last_seq: int = 0

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


# -- the fold --------------------------------------------------------------------------


@dataclass
class _Open:
    """A step while the fold is still reading: mutable, frozen into a :class:`Step`."""

    number: int | None
    key: str
    kind: StepKind
    name: str
    occurrence: int
    status: StepStatus
    start: float
    end: float | None = None
    due: float | None = None
    input: JSON = None
    value: JSON = None
    error: Failure | None = None
    attempts: dict[int, Attempt] = field(default_factory=dict)
    max_attempts: int = 0
    schema: JSON = None
    resolved_by: str | None = None
    child_workflow_id: str | None = None
    timeout_at: float | None = None  # the running attempt's deadline
    retry_at: float | None = None  # the next attempt's due time while RETRYING

    def freeze(self) -> Step:
        deadline = None
        if self.status.active:
            if self.status is StepStatus.RETRYING:
                if self.retry_at is not None:
                    deadline = Deadline(self.retry_at, DeadlineKind.RETRIES)
            elif self.kind is StepKind.TASK and self.timeout_at is not None:
                deadline = Deadline(self.timeout_at, DeadlineKind.TIMES_OUT)
            elif self.kind is StepKind.TIMER and self.due is not None:
                deadline = Deadline(self.due, DeadlineKind.FIRES)
            elif self.kind is StepKind.PROMISE and self.due is not None:
                deadline = Deadline(self.due, DeadlineKind.TIMES_OUT)
        return Step(
            number=self.number,
            key=self.key,
            kind=self.kind,
            name=self.name,
            occurrence=self.occurrence,
            status=self.status,
            start=self.start,
            end=self.end,
            deadline=deadline,
            due=self.due,
            input=self.input,
            value=self.value,
            error=self.error,
            attempts=tuple(self.attempts[n] for n in sorted(self.attempts)),
            max_attempts=self.max_attempts,
            schema=self.schema,
            resolved_by=self.resolved_by,
            child_workflow_id=self.child_workflow_id,
        )

    def wait(self) -> Wait | None:
        if self.kind is StepKind.PROMISE and self.status is StepStatus.PENDING:
            return Wait(WaitKind.PROMISE, self.key, self.name, self.start, self.due)
        if self.kind is StepKind.TIMER and self.status is StepStatus.WAITING:
            return Wait(WaitKind.TIMER, self.key, self.name, self.start, self.due)
        if self.kind is StepKind.TASK and self.status is StepStatus.RETRYING:
            return Wait(WaitKind.RETRY, self.key, self.name, self.start, self.retry_at)
        return None


_TERMINAL = {
    E.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
    E.WORKFLOW_EXECUTION_FAILED: RunStatus.FAILED,
    E.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}
# The engine writes the run row WAITING when one of these is recorded, RUNNING on a resume.
_SUSPENDS = frozenset({E.TIMER_STARTED, E.PROMISE_CREATED})
_RESUMES = frozenset({E.TIMER_FIRED, E.PROMISE_RESOLVED, E.PROMISE_REJECTED, E.PROMISE_TIMEOUT})


class _Folder:
    def __init__(self) -> None:
        self.status = RunStatus.PENDING
        self.run: dict[str, JSON] = {}
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.output: JSON = None
        self.error: Failure | None = None
        self.cancel_requested = False
        self.steps: list[_Open] = []
        self.by_key: dict[str, _Open] = {}  # step key -> step
        self.promises: dict[str, _Open] = {}  # promise id -> step
        self.occurrences: dict[tuple[StepKind, str], int] = {}
        self.number = 0
        self.last_seq = 0

    def read(self, ev: Event) -> None:
        self.last_seq = ev.seq
        kind, p = ev.type, ev.payload
        number = None
        if command_family(kind, p) is not None:
            self.number += 1
            number = self.number
        self._run_status(kind, p, ev.ts)
        if not self._open(kind, p, ev.ts, number):
            self._settle(kind, p, ev.ts)

    def _run_status(self, kind: E, p: dict[str, JSON], ts: float) -> None:
        if kind is E.WORKFLOW_STARTED:
            self.status = RunStatus.RUNNING
            self.started_at = ts
            self.run = p
        elif kind in _TERMINAL:
            self.status = _TERMINAL[kind]
            self.ended_at = ts
            if kind is E.WORKFLOW_EXECUTION_FAILED:
                self.error = Failure.of(p.get("error"))
            else:
                self.output = p.get("output")
        elif kind is E.CANCELLATION_REQUESTED:
            self.cancel_requested = True
        elif kind in _SUSPENDS and self.status in (RunStatus.RUNNING, RunStatus.WAITING):
            self.status = RunStatus.WAITING
        if kind in _RESUMES and self.status is RunStatus.WAITING:
            self.status = RunStatus.RUNNING

    def _open(self, kind: E, p: dict[str, JSON], ts: float, number: int | None) -> bool:
        """Add the step an event opens (False for events that open none)."""

        def new(kind: StepKind, key: str, name: str, status: StepStatus) -> _Open:
            return _Open(number, key, kind, name, 0, status, ts)

        match kind:
            case E.TASK_SCHEDULED:
                step = new(
                    StepKind.TASK,
                    str(p.get("taskExecutionId")),
                    str(p.get("taskKind", "task")),
                    StepStatus.SCHEDULED,
                )
                step.input = p.get("input")
                step.max_attempts = int(p.get("maxAttempts", 1) or 1)
            case E.TIMER_STARTED:
                timer_id = str(p.get("timerId"))
                # A signal wait's timeout is a timer too, but no command: it has no number.
                step = new(StepKind.TIMER, f"timer:{timer_id}", timer_id, StepStatus.WAITING)
                step.due = epoch(p.get("fireAt"))
            case E.PROMISE_CREATED:
                name = str(p.get("promiseName"))
                step = new(StepKind.PROMISE, f"promise:{name}", name, StepStatus.PENDING)
                step.due = epoch(p.get("timeoutAt"))
                step.schema = p.get("schema")
                self.promises[str(p.get("promiseId"))] = step
            case E.CHILD_WORKFLOW_INITIATED:
                step = new(
                    StepKind.CHILD,
                    f"child:{p.get('childExecutionId')}",
                    str(p.get("kind", "child")),
                    StepStatus.RUNNING,
                )
                step.input = p.get("input")
                step.child_workflow_id = str(p.get("childWorkflowId", ""))
            case E.OPERATION_COMPLETED:
                step = new(
                    StepKind.OPERATION,
                    f"op:{self.number}",
                    str(p.get("operationName")),
                    StepStatus.COMPLETED,
                )
                step.end, step.value = ts, p.get("result")
            case E.STATE_SET | E.STATE_CLEARED:
                cleared = kind is E.STATE_CLEARED
                step = new(
                    StepKind.STATE,
                    f"state:{self.number}",
                    str(p.get("key")),
                    StepStatus.CLEARED if cleared else StepStatus.SET,
                )
                step.end, step.value = ts, None if cleared else p.get("value")
            case E.SIGNAL_RECEIVED:
                step = new(
                    StepKind.SIGNAL,
                    f"signal:{p.get('signalId')}",
                    str(p.get("signalName")),
                    StepStatus.RECEIVED,
                )
                step.end, step.value = ts, p.get("value")
            case _:
                return False
        # Repeated names (the same task scheduled twice) are counted, in issue order.
        name_key = (step.kind, step.name)
        step.occurrence = self.occurrences.get(name_key, 0) + 1
        self.occurrences[name_key] = step.occurrence
        self.steps.append(step)
        self.by_key[step.key] = step
        return True

    def _settle(self, kind: E, p: dict[str, JSON], ts: float) -> None:
        match kind:
            case (
                E.TASK_STARTED
                | E.TASK_COMPLETED
                | E.TASK_FAILED
                | E.TASK_RETRY_SCHEDULED
                | E.TASK_CANCELLED
            ):
                step = self.by_key.get(str(p.get("taskExecutionId")))
                if step is not None:
                    _task_event(step, kind, p, ts)
            case E.TIMER_FIRED | E.TIMER_CANCELLED:
                step = self.by_key.get(f"timer:{p.get('timerId')}")
                if step is not None:
                    fired = kind is E.TIMER_FIRED
                    step.status = StepStatus.FIRED if fired else StepStatus.CANCELLED
                    step.end = ts
            case E.PROMISE_RESOLVED | E.PROMISE_REJECTED | E.PROMISE_TIMEOUT:
                step = self.promises.get(str(p.get("promiseId")))
                if step is None:
                    step = self.by_key.get(f"promise:{p.get('promiseName')}")
                if step is not None:
                    _promise_event(step, kind, p, ts)
            case E.CHILD_WORKFLOW_COMPLETED | E.CHILD_WORKFLOW_FAILED:
                step = self.by_key.get(f"child:{p.get('childExecutionId')}")
                if step is None:
                    return
                step.end = ts
                if kind is E.CHILD_WORKFLOW_COMPLETED:
                    step.status, step.value = StepStatus.COMPLETED, p.get("output")
                else:
                    cancelled = bool(p.get("cancelled"))
                    step.status = StepStatus.CANCELLED if cancelled else StepStatus.FAILED
                    step.error = Failure.of(p.get("error"))
            case _:
                pass

    def result(self) -> FoldedRun:
        if self.status.is_terminal:
            self._close_open_steps()
        steps = tuple(step.freeze() for step in self.steps)
        waits = tuple(w for w in (step.wait() for step in self.steps) if w is not None)
        times = [w.deadline for w in waits if w.deadline is not None]
        run = self.run
        parent = run.get("parentExecutionId")
        return FoldedRun(
            status=self.status,
            workflow_id=_text(run.get("workflowId")),
            kind=_text(run.get("kind")),
            input=run.get("input"),
            source_hash=_text(run.get("sourceHash")),
            parent_execution_id=_text(parent),
            started_at=self.started_at,
            ended_at=self.ended_at,
            output=self.output,
            error=self.error,
            cancel_requested=self.cancel_requested,
            steps=steps,
            waits=waits,
            next_deadline=min(times) if times else None,
            last_seq=self.last_seq,
        )

    def _close_open_steps(self) -> None:
        # The run ended around them (cancelled, or failed elsewhere): nothing moves them now.
        ended = StepStatus.CANCELLED if self.status is RunStatus.CANCELLED else StepStatus.ABANDONED
        for step in self.steps:
            if not step.status.active:
                continue
            step.status = ended
            step.end = step.end or self.ended_at
            for number, attempt in step.attempts.items():
                if attempt.status is StepStatus.RUNNING:
                    step.attempts[number] = replace(attempt, status=ended, ended_at=self.ended_at)


def _task_event(step: _Open, kind: E, p: dict[str, JSON], ts: float) -> None:
    number = _int(p.get("attempt"))
    attempt = step.attempts.get(number) if number is not None else None
    match kind:
        case E.TASK_STARTED:
            number = number if number is not None else len(step.attempts) + 1
            deadline = epoch(p.get("deadline"))
            # A second start of the same attempt (the run resumed after a crash) restarts it.
            step.attempts[number] = Attempt(number, StepStatus.RUNNING, ts, deadline=deadline)
            step.status, step.timeout_at, step.retry_at = StepStatus.RUNNING, deadline, None
        case E.TASK_COMPLETED:
            step.status, step.end, step.value = StepStatus.COMPLETED, ts, p.get("output")
            if number is not None:
                step.attempts[number] = _ended(attempt, number, StepStatus.COMPLETED, ts)
        case E.TASK_FAILED | E.TASK_RETRY_SCHEDULED:
            error, timed_out = Failure.of(p.get("error")), bool(p.get("timedOut"))
            retry_at = epoch(p.get("nextAttemptAt")) if kind is E.TASK_RETRY_SCHEDULED else None
            if number is not None:
                step.attempts[number] = replace(
                    _ended(attempt, number, StepStatus.FAILED, ts),
                    error=error,
                    timed_out=timed_out,
                    retry_at=retry_at,
                )
            if kind is E.TASK_FAILED:
                step.status, step.end, step.error = StepStatus.FAILED, ts, error
            else:
                step.status, step.retry_at = StepStatus.RETRYING, retry_at
        case E.TASK_CANCELLED:
            step.status, step.end = StepStatus.CANCELLED, ts
            for n, running in step.attempts.items():
                if running.status is StepStatus.RUNNING:
                    step.attempts[n] = _ended(running, n, StepStatus.CANCELLED, ts)
        case _:
            pass


def _promise_event(step: _Open, kind: E, p: dict[str, JSON], ts: float) -> None:
    step.end = ts
    if kind is E.PROMISE_RESOLVED:
        step.status, step.value = StepStatus.RESOLVED, p.get("value")
        step.resolved_by = _text(p.get("resolvedBy"))
    elif kind is E.PROMISE_REJECTED:
        step.status = StepStatus.REJECTED
        step.error = Failure("PromiseRejected", str(p.get("error", "")))
        step.resolved_by = _text(p.get("resolvedBy"))
    else:
        step.status = StepStatus.TIMED_OUT


def _ended(attempt: Attempt | None, number: int, status: StepStatus, ts: float) -> Attempt:
    if attempt is None:  # an outcome without its start (should not happen; show it anyway)
        return Attempt(number, status, None, ts)
    return replace(attempt, status=status, ended_at=ts)


def _int(value: JSON) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: JSON) -> str | None:
    return None if value is None else str(value)


def fold(events: Iterable[Event]) -> FoldedRun:
    """Fold a run's events (in ``seq`` order) into what its history says.

    Accepts :class:`~flovyn_nb.history.events.Event` (the engine's replay records are
    events too); convert events read through the client with
    :func:`~flovyn_nb.history.events.events_of`. Linear in the number of events.
    """
    folder = _Folder()
    for ev in events:
        folder.read(ev)
    return folder.result()
