"""A run's history folded, in one pass, into what it says: status, steps, waits, deadlines.

:func:`fold` reads the events of one run (in ``seq`` order) and returns a
:class:`~flovyn_nb.history.folded.FoldedRun`: the run's status as the history tells it,
its input, output or error, its steps in the order the code issued them (tasks with every
attempt, timers, promises, child workflows, ``ctx.run`` operations, state changes, and
the signals it received), the waits still open and the earliest of their deadlines.
Panels, ``wait_all`` and the CLI read runs through it, so no caller interprets event
types itself.

The fold is linear in the history's length and never raises on odd payloads (a panel
must show what is there): missing fields read as None. Panels fold a run's whole history
up to ten times a second, so the per-event work is kept small: one dict dispatch per
event, mutable records while reading, frozen objects built once at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from flovyn_nb.history.attempts import effective
from flovyn_nb.history.events import JSON, Event, command_family, epoch
from flovyn_nb.history.folded import (
    Attempt,
    Deadline,
    DeadlineKind,
    EarlierAttempt,
    Failure,
    FoldedRun,
    Step,
    StepKind,
    StepStatus,
    Wait,
    WaitKind,
)
from flovyn_nb.model import EventType as E
from flovyn_nb.model import RunStatus

__all__ = ["fold"]

_RUNNING = StepStatus.RUNNING


@dataclass(slots=True)
class _Try:
    """An attempt while the fold is still reading."""

    number: int
    status: StepStatus
    started_at: float | None
    ended_at: float | None = None
    deadline: float | None = None
    error: Failure | None = None
    timed_out: bool = False
    retry_at: float | None = None

    def freeze(self) -> Attempt:
        return Attempt(
            self.number,
            self.status,
            self.started_at,
            self.ended_at,
            self.deadline,
            self.error,
            self.timed_out,
            self.retry_at,
        )


@dataclass(slots=True)
class _Open:
    """A step while the fold is still reading: mutable, frozen into a :class:`Step`."""

    number: int | None
    key: str
    kind: StepKind
    name: str
    status: StepStatus
    start: float
    occurrence: int = 1
    end: float | None = None
    due: float | None = None
    input: JSON = None
    value: JSON = None
    error: Failure | None = None
    attempts: dict[int, _Try] = field(default_factory=dict)
    max_attempts: int = 0
    schema: JSON = None
    resolved_by: str | None = None
    child_workflow_id: str | None = None
    timeout_at: float | None = None  # the running attempt's deadline
    retry_at: float | None = None  # the next attempt's due time while RETRYING
    cached_from: JSON = None  # a reused step: where its output was recorded

    def deadline(self) -> Deadline | None:
        if not self.status.active:
            return None
        if self.status is StepStatus.RETRYING:
            return None if self.retry_at is None else Deadline(self.retry_at, DeadlineKind.RETRIES)
        if self.kind is StepKind.TASK:
            at, kind = self.timeout_at, DeadlineKind.TIMES_OUT
        elif self.kind is StepKind.TIMER:
            at, kind = self.due, DeadlineKind.FIRES
        else:
            at, kind = self.due, DeadlineKind.TIMES_OUT
        return None if at is None else Deadline(at, kind)

    def freeze(self) -> Step:
        attempts = self.attempts
        return Step(
            self.number,
            self.key,
            self.kind,
            self.name,
            self.occurrence,
            self.status,
            self.start,
            self.end,
            self.deadline(),
            self.due,
            self.input,
            self.value,
            self.error,
            tuple([attempts[n].freeze() for n in sorted(attempts)]) if attempts else (),
            self.max_attempts,
            self.schema,
            self.resolved_by,
            self.child_workflow_id,
            self.cached_from,
        )

    def wait(self) -> Wait | None:
        status = self.status
        if status is StepStatus.PENDING:  # only promises are PENDING
            return Wait(WaitKind.PROMISE, self.key, self.name, self.start, self.due)
        if status is StepStatus.WAITING:  # only timers are WAITING
            return Wait(WaitKind.TIMER, self.key, self.name, self.start, self.due)
        if status is StepStatus.RETRYING:
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
_RUN_EVENTS = frozenset({E.WORKFLOW_STARTED, E.CANCELLATION_REQUESTED, *_TERMINAL})

_Handler = Callable[["_Folder", dict[str, JSON], float, int | None], None]


class _Folder:
    def __init__(self) -> None:
        self.status = RunStatus.PENDING
        self.run: dict[str, JSON] = {}
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.output: JSON = None
        self.error: Failure | None = None
        self.cancel_requested = False
        self.cancel_reason = ""
        self.steps: list[_Open] = []
        self.by_key: dict[str, _Open] = {}  # step key -> step
        self.promises: dict[str, _Open] = {}  # promise id -> step
        self.occurrences: dict[tuple[StepKind, str], int] = {}
        self.number = 0
        self.last_seq = 0

    def read(self, ev: Event) -> None:
        kind, p = ev.type, ev.payload
        self.last_seq = ev.seq
        number = None
        if command_family(kind, p) is not None:
            self.number = number = self.number + 1
        if kind in _RUN_EVENTS:
            self._run_event(kind, p, ev.ts)
        elif kind in _SUSPENDS:
            if self.status is RunStatus.RUNNING:
                self.status = RunStatus.WAITING
        elif kind in _RESUMES and self.status is RunStatus.WAITING:
            self.status = RunStatus.RUNNING
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, p, ev.ts, number)

    def _run_event(self, kind: E, p: dict[str, JSON], ts: float) -> None:
        if kind is E.WORKFLOW_STARTED:
            self.status = RunStatus.RUNNING
            self.started_at = ts
            self.run = p
        elif kind is E.CANCELLATION_REQUESTED:
            self.cancel_requested = True
            self.cancel_reason = str(p.get("reason") or "")
        else:
            self.status = _TERMINAL[kind]
            self.ended_at = ts
            if kind is E.WORKFLOW_EXECUTION_FAILED:
                self.error = Failure.of(p.get("error"))
            else:
                self.output = p.get("output")

    def add(self, step: _Open) -> _Open:
        # Repeated names (the same task scheduled twice) are counted, in issue order.
        name_key = (step.kind, step.name)
        occurrence = self.occurrences.get(name_key, 0) + 1
        self.occurrences[name_key] = step.occurrence = occurrence
        self.steps.append(step)
        self.by_key[step.key] = step
        return step

    def result(self) -> FoldedRun:
        if self.status.is_terminal:
            self._close_open_steps()
        waits = [w for w in (s.wait() for s in self.steps if s.status.active) if w is not None]
        times = [w.deadline for w in waits if w.deadline is not None]
        run = self.run
        return FoldedRun(
            status=self.status,
            workflow_id=_text(run.get("workflowId")),
            kind=_text(run.get("kind")),
            input=run.get("input"),
            source_hash=_text(run.get("sourceHash")),
            parent_execution_id=_text(run.get("parentExecutionId")),
            started_at=self.started_at,
            ended_at=self.ended_at,
            output=self.output,
            error=self.error,
            cancel_requested=self.cancel_requested,
            cancel_reason=self.cancel_reason,
            steps=tuple(s.freeze() for s in self.steps),
            waits=tuple(waits),
            next_deadline=min(times) if times else None,
            last_seq=self.last_seq,
            forked_from=_text(run.get("forkedFrom")),
            from_step=_int(run.get("fromStep")),
        )

    def _close_open_steps(self) -> None:
        # The run ended around them (cancelled, or failed elsewhere): nothing moves them now.
        ended = StepStatus.CANCELLED if self.status is RunStatus.CANCELLED else StepStatus.ABANDONED
        for step in self.steps:
            if step.status.active:
                step.status = ended
                step.end = step.end or self.ended_at
                for attempt in step.attempts.values():
                    if attempt.status is _RUNNING:
                        attempt.status, attempt.ended_at = ended, self.ended_at


# -- one handler per event type that opens or moves a step -------------------------------


def _task_scheduled(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    step = _Open(
        number,
        str(p.get("taskExecutionId")),
        StepKind.TASK,
        str(p.get("taskKind", "task")),
        StepStatus.SCHEDULED,
        ts,
    )
    step.input = p.get("input")
    step.max_attempts = int(p.get("maxAttempts", 1) or 1)
    f.add(step)


def _task(f: _Folder, p: dict[str, JSON]) -> tuple[_Open | None, int | None]:
    attempt = p.get("attempt")
    number = attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else None
    return f.by_key.get(str(p.get("taskExecutionId"))), number


def _task_started(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step, number = _task(f, p)
    if step is None:
        return
    if number is None:  # a start without its number counts as the next attempt
        number = len(step.attempts) + 1
    deadline = epoch(p.get("deadline"))
    # A second start of the same attempt (the run resumed after a crash) restarts it.
    step.attempts[number] = _Try(number, _RUNNING, ts, deadline=deadline)
    step.status, step.timeout_at, step.retry_at = _RUNNING, deadline, None


def _attempt_ended(step: _Open, number: int | None, status: StepStatus, ts: float) -> _Try | None:
    if number is None:
        return None
    attempt = step.attempts.get(number)
    if attempt is None:  # an outcome without its start (should not happen; show it anyway)
        attempt = step.attempts[number] = _Try(number, status, None)
    attempt.status, attempt.ended_at = status, ts
    return attempt


def _task_completed(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step, number = _task(f, p)
    if step is not None:
        step.status, step.end, step.value = StepStatus.COMPLETED, ts, p.get("output")
        step.cached_from = p.get("cachedFrom")
        if step.cached_from is None:  # a reused step ran no attempt
            _attempt_ended(step, number, StepStatus.COMPLETED, ts)


def _task_failed(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step, number = _task(f, p)
    if step is None:
        return
    error = Failure.of(p.get("error"))
    attempt = _attempt_ended(step, number, StepStatus.FAILED, ts)
    if attempt is not None:
        attempt.error, attempt.timed_out = error, bool(p.get("timedOut"))
    step.status, step.end, step.error = StepStatus.FAILED, ts, error


def _task_retry(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step, number = _task(f, p)
    if step is None:
        return
    retry_at = epoch(p.get("nextAttemptAt"))
    attempt = _attempt_ended(step, number, StepStatus.FAILED, ts)
    if attempt is not None:
        attempt.error, attempt.timed_out = Failure.of(p.get("error")), bool(p.get("timedOut"))
        attempt.retry_at = retry_at
    step.status, step.retry_at = StepStatus.RETRYING, retry_at


def _task_cancelled(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step, _number = _task(f, p)
    if step is None:
        return
    step.status, step.end = StepStatus.CANCELLED, ts
    for attempt in step.attempts.values():
        if attempt.status is _RUNNING:
            attempt.status, attempt.ended_at = StepStatus.CANCELLED, ts


def _timer_started(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    # A signal wait's timeout is a timer too, but no command: it comes without a number.
    timer_id = str(p.get("timerId"))
    step = _Open(number, f"timer:{timer_id}", StepKind.TIMER, timer_id, StepStatus.WAITING, ts)
    step.due = epoch(p.get("fireAt"))
    f.add(step)


def _timer_fired(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = f.by_key.get(f"timer:{p.get('timerId')}")
    if step is not None:
        step.status, step.end = StepStatus.FIRED, ts


def _timer_cancelled(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = f.by_key.get(f"timer:{p.get('timerId')}")
    if step is not None:
        step.status, step.end = StepStatus.CANCELLED, ts


def _promise_created(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    name = str(p.get("promiseName"))
    step = _Open(number, f"promise:{name}", StepKind.PROMISE, name, StepStatus.PENDING, ts)
    step.due = epoch(p.get("timeoutAt"))
    step.schema = p.get("schema")
    f.promises[str(p.get("promiseId"))] = f.add(step)


def _promise(f: _Folder, p: dict[str, JSON], ts: float) -> _Open | None:
    step = f.promises.get(str(p.get("promiseId")))
    if step is None:
        step = f.by_key.get(f"promise:{p.get('promiseName')}")
    if step is not None:
        step.end = ts
    return step


def _promise_resolved(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = _promise(f, p, ts)
    if step is not None:
        step.status, step.value = StepStatus.RESOLVED, p.get("value")
        step.resolved_by = _text(p.get("resolvedBy"))


def _promise_rejected(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = _promise(f, p, ts)
    if step is not None:
        step.status = StepStatus.REJECTED
        step.error = Failure("PromiseRejected", str(p.get("error", "")))
        step.resolved_by = _text(p.get("resolvedBy"))


def _promise_timeout(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = _promise(f, p, ts)
    if step is not None:
        step.status = StepStatus.TIMED_OUT


def _child_initiated(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    key, name = f"child:{p.get('childExecutionId')}", str(p.get("kind", "child"))
    step = _Open(number, key, StepKind.CHILD, name, _RUNNING, ts)
    step.input = p.get("input")
    step.child_workflow_id = str(p.get("childWorkflowId", ""))
    f.add(step)


def _child_completed(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = f.by_key.get(f"child:{p.get('childExecutionId')}")
    if step is not None:
        step.status, step.end, step.value = StepStatus.COMPLETED, ts, p.get("output")


def _child_failed(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    step = f.by_key.get(f"child:{p.get('childExecutionId')}")
    if step is not None:
        cancelled = bool(p.get("cancelled"))
        step.status = StepStatus.CANCELLED if cancelled else StepStatus.FAILED
        step.end, step.error = ts, Failure.of(p.get("error"))


def _operation(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    name = str(p.get("operationName"))
    step = _Open(number, f"op:{number}", StepKind.OPERATION, name, StepStatus.COMPLETED, ts)
    step.end, step.value = ts, p.get("result")
    f.add(step)


def _state_set(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    step = _Open(number, f"state:{number}", StepKind.STATE, str(p.get("key")), StepStatus.SET, ts)
    step.end, step.value = ts, p.get("value")
    f.add(step)


def _state_cleared(f: _Folder, p: dict[str, JSON], ts: float, number: int | None) -> None:
    key, name = f"state:{number}", str(p.get("key"))
    step = _Open(number, key, StepKind.STATE, name, StepStatus.CLEARED, ts)
    step.end = ts
    f.add(step)


def _signal(f: _Folder, p: dict[str, JSON], ts: float, _: int | None) -> None:
    key, name = f"signal:{p.get('signalId')}", str(p.get("signalName"))
    step = _Open(None, key, StepKind.SIGNAL, name, StepStatus.RECEIVED, ts)
    step.end, step.value = ts, p.get("value")
    f.add(step)


def _text(value: JSON) -> str | None:
    return None if value is None else str(value)


_HANDLERS: dict[E, _Handler] = {
    E.TASK_SCHEDULED: _task_scheduled,
    E.TASK_STARTED: _task_started,
    E.TASK_COMPLETED: _task_completed,
    E.TASK_FAILED: _task_failed,
    E.TASK_RETRY_SCHEDULED: _task_retry,
    E.TASK_CANCELLED: _task_cancelled,
    E.TIMER_STARTED: _timer_started,
    E.TIMER_FIRED: _timer_fired,
    E.TIMER_CANCELLED: _timer_cancelled,
    E.PROMISE_CREATED: _promise_created,
    E.PROMISE_RESOLVED: _promise_resolved,
    E.PROMISE_REJECTED: _promise_rejected,
    E.PROMISE_TIMEOUT: _promise_timeout,
    E.CHILD_WORKFLOW_INITIATED: _child_initiated,
    E.CHILD_WORKFLOW_COMPLETED: _child_completed,
    E.CHILD_WORKFLOW_FAILED: _child_failed,
    E.OPERATION_COMPLETED: _operation,
    E.STATE_SET: _state_set,
    E.STATE_CLEARED: _state_cleared,
    E.SIGNAL_RECEIVED: _signal,
}


def _int(value: JSON) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def fold(events: Iterable[Event]) -> FoldedRun:
    """Fold a run's events (in ``seq`` order) into what its history says.

    Accepts :class:`~flovyn_nb.history.events.Event` (the engine's replay records are
    events too); convert events read through the client with
    :func:`~flovyn_nb.history.events.events_of`. Linear in the number of events.
    """
    every = events if isinstance(events, list) else list(events)
    retried = [i for i, ev in enumerate(every) if ev.type is E.WORKFLOW_RETRIED]
    folder = _Folder()
    for ev in effective(every) if retried else every:
        folder.read(ev)
    result = folder.result()
    if not retried:
        return result
    # A retried run: each earlier attempt as it stood when the next one began.
    earlier = []
    for number, i in enumerate(retried, start=1):
        then = _Folder()
        for ev in effective(every[:i]):
            then.read(ev)
        was, marker = then.result(), every[i]
        earlier.append(
            EarlierAttempt(
                number=number,
                status=was.status,
                error=was.error,
                steps=was.steps,
                ended_at=was.ended_at,
                retried_at=marker.ts,
                from_step=_int(marker.payload.get("fromStep")),
                reason=_text(marker.payload.get("reason")) or "",
            )
        )
    return replace(result, last_seq=every[-1].seq, attempt=len(retried) + 1, earlier=tuple(earlier))
