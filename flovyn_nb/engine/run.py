"""One run of a workflow: its commands, their history, and replay.

A live run keeps its coroutine; a run recovered in a new process re-executes its code and
answers each command from the recorded :class:`History` until the code goes past it.
Everything here runs on the engine loop (sync workflows reach it through anyio's portal).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import random
import traceback
import typing
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel

from flovyn_nb import serde
from flovyn_nb.context import StepHandle, SyncWorkflowContext, WorkflowContext
from flovyn_nb.definitions import TaskDefinition, WorkflowDefinition, registry
from flovyn_nb.engine import logcapture
from flovyn_nb.engine.faults import describe, is_code_failure, storable, unstorable
from flovyn_nb.engine.waits import PromiseWait, Wait
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import (
    ChildWorkflowFailed,
    DeterminismViolation,
    InvalidInput,
    PromiseRejected,
    PromiseTimeout,
    SignalTimeout,
    UnknownTask,
    UnknownWorkflowKind,
    WorkflowCancelled,
)
from flovyn_nb.history.replay import History, epoch_of
from flovyn_nb.model import (
    CancellationRequested,
    ChildWorkflowCompleted,
    ChildWorkflowFailedPayload,
    ChildWorkflowInitiated,
    ErrorInfo,
    EventType,
    OperationCompleted,
    PromiseCreated,
    PromiseRejectedPayload,
    PromiseResolved,
    PromiseStatus,
    PromiseTimeoutPayload,
    RunStatus,
    SignalReceived,
    StateCleared,
    StateSet,
    TimerCancelled,
    TimerFired,
    TimerStarted,
    WorkflowCancelledPayload,
    WorkflowCompleted,
    WorkflowExecutionFailed,
    WorkflowStarted,
    _Payload,
)
from flovyn_nb.store import (
    EventRow,
    FlagCancel,
    Intent,
    LogRow,
    MarkSignalDelivered,
    NewPromise,
    PromiseRow,
    ResetPromise,
    RunUpdate,
    as_stored,
)

if TYPE_CHECKING:
    from flovyn_nb.engine.engine import Engine

E = EventType
# Events that record no outcome: losing them in a crash only means the step runs again.
_NOT_RESULTS = frozenset(
    {E.WORKFLOW_STARTED, E.TASK_SCHEDULED, E.TASK_STARTED, E.TASK_RETRY_SCHEDULED}
)


def _seconds(value: timedelta | float | None, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise InvalidInput(f"{what} must not be negative, got {value}")
    return seconds


def _iso(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _timed_out(name: str) -> PromiseTimeout:
    return PromiseTimeout(f"promise {name!r} timed out", name=name)


def error_info(exc: BaseException) -> ErrorInfo:
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:  # an exception whose __str__ fails
        text = ""
    return ErrorInfo(type=type(exc).__name__, message=describe(exc), traceback=text)


class Run:
    """The state of one run owned by this engine."""

    def __init__(
        self,
        engine: Engine,
        *,
        execution_id: str,
        workflow_id: str,
        definition: WorkflowDefinition[Any],
        input_json: Any,
        history: History | None,
        next_seq: int,
        parent_id: str | None,
    ) -> None:
        self.engine = engine
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self.definition = definition
        self.input_json = input_json
        self.history = history
        self.next_seq = next_seq
        self.parent_id = parent_id
        self.cancel_requested = bool(history and history.cancel_requested)
        self._cancel_delivered = False
        self._counters: dict[str, int] = defaultdict(int)
        self.waits: set[Wait] = set()
        self.promise_waits: dict[str, PromiseWait] = {}
        self.signal_waits: dict[str, deque[tuple[Wait, str | None, Any]]] = defaultdict(deque)
        self.child_waits: dict[str, Wait] = {}
        self.children: set[str] = set()
        self.delivered_signals: set[str] = set()
        self.promise_names: set[str] = set()
        # running tasks: their wait -> how to cancel them (they record TASK_CANCELLED first)
        self.task_cancellers: dict[Wait, Callable[[], None]] = {}
        self.state: dict[str, Any] = {}
        seed = int.from_bytes(hashlib.sha256(execution_id.encode()).digest()[:8], "big")
        self.rng = random.Random(seed)
        self.scope = logcapture.StepScope(sink=self.log_sink, muted=lambda: self.replaying)
        self._logger: logging.Logger | None = None
        self.ctx: WorkflowContext | SyncWorkflowContext = (
            WorkflowContext(self) if definition.is_async else SyncWorkflowContext(self)
        )
        self.status = RunStatus.RUNNING
        # what the run row says (or will, once the writes handed to the writer commit)
        self.row_status = RunStatus.RUNNING
        self.end: RunUpdate | None = None  # how it ended (output, error), once it has
        self.result_ticket = 0  # writer ticket of the last recorded outcome

    def emit_started(self) -> None:
        definition = self.definition
        self.emit(
            E.WORKFLOW_STARTED,
            WorkflowStarted(
                workflow_id=self.workflow_id,
                kind=definition.name,
                input=self.input_json,
                parent_execution_id=self.parent_id,
                source_hash=definition.source_hash,
            ),
        )

    def activity(self) -> tuple[bool, str]:
        """(whether its code runs or is about to, what it waits on) — on the loop."""
        waiting = [f"promise {name!r}" for name in self.promise_waits]
        waiting += [f"signal {name!r}" for name, queue in self.signal_waits.items() if queue]
        waiting += [f"child {wait.label!r}" for wait in self.child_waits.values() if not wait.done]
        waiting += sorted({"timer" for wait in self.waits if wait.label.startswith("timer-")})
        waiting += [f"task {wait.label!r}" for wait in self.task_cancellers]
        # A wait that is done but still listed: the code resumes on the loop's next turn.
        resuming = any(wait.done for wait in self.waits)
        blocked = bool(self.waits) or bool(self.task_cancellers) or bool(self.child_waits)
        return resuming or not blocked, "waiting on " + ", ".join(waiting) if waiting else "running"

    async def outcomes_durable(self) -> None:
        """Wait until every outcome this run recorded is committed (before a side effect)."""
        await self.engine.writer.wait(self.result_ticket)

    @property
    def logger(self) -> logging.Logger:
        """The run's ``ctx.logger`` (made on first use: most runs never log)."""
        if self._logger is None:
            self._logger = logcapture.step_logger(
                f"flovyn.{self.definition.name}", lambda: self.scope
            )
        return self._logger

    # -- recording ----------------------------------------------------------------------

    @property
    def replaying(self) -> bool:
        return self.history is not None and self.history.replaying

    def emit(
        self,
        kind: EventType,
        payload: _Payload | None,
        *,
        intents: Iterable[Intent] = (),
        status: RunStatus | None = None,
        write: Write | None = None,
    ) -> Write:
        """Append an event (lazily written: durable at the next barrier or within linger).

        ``status`` moves the run to RUNNING or WAITING (its row follows lazily); ``write``
        carries what else the event's transaction writes. When the payload cannot be
        encoded, this raises before anything is changed or recorded.
        """
        text = None if payload is None else serde.dumps(payload.dump(), what=f"{kind.value} event")
        write = write or Write()
        write.intents.extend(intents)
        if status is not None:
            self.move(status)
        if text is not None:
            row = EventRow(
                self.execution_id, self.next_seq, kind.value, text, self.engine.clock.now()
            )
            self.next_seq += 1
            write.events.append(row)
            self.engine.observe_event(self, row)
        write.ticket = self.engine.writer.submit(write)
        if kind not in _NOT_RESULTS:
            self.result_ticket = write.ticket
        return write

    def move(self, status: RunStatus) -> None:
        """RUNNING <-> WAITING: the run row follows lazily (see ``Writer.note_status``)."""
        if status is not self.status:
            self.status = status
            self.engine.writer.note_status(self.execution_id, self.row_update)

    def row_update(self) -> RunUpdate | None:
        """The run row's lagging change, if it still lags (the writer calls this)."""
        if self.end is not None:
            if self.row_status.is_terminal:
                return None
            self.row_status = self.end.status
            return self.end
        status = self.status
        if status is self.row_status or status.is_terminal:
            return None
        self.row_status = status
        return RunUpdate(self.execution_id, status, self.engine.clock.now())

    async def commit(
        self,
        kind: EventType,
        payload: _Payload | None,
        *,
        intents: Iterable[Intent] = (),
        status: RunStatus | None = None,
    ) -> Any:
        write = self.emit(kind, payload, intents=intents, status=status)
        await self.engine.writer.wait(write.ticket)
        if write.error is not None:
            raise write.error
        return write.result

    def log_sink(
        self, task_execution_id: str | None, stream: str, level: str, message: str
    ) -> None:
        row = LogRow(
            self.execution_id, task_execution_id, self.engine.clock.now(), stream, level, message
        )
        self.engine.submit_log(self, row)

    def _next(self, family: str) -> int:
        index = self._counters[family]
        self._counters[family] = index + 1
        return index

    def _match(self, family: str, index: int, identity: str | None, issued: str) -> Any:
        if self.history is None:
            return None
        return self.history.match(family, index, identity, issued)

    async def _block(self, wait: Wait) -> Any:
        """Wait for an outcome; a pending cancellation is delivered here, once."""
        if not wait.done and self.cancel_requested and not self._cancel_delivered:
            self._cancel_delivered = True
            raise WorkflowCancelled(workflow_id=self.workflow_id)
        self.waits.add(wait)
        try:
            return await wait.result()
        finally:
            self.waits.discard(wait)

    # -- tasks --------------------------------------------------------------------------

    def schedule_async(self, task: TaskDefinition[Any] | str, input: Any) -> StepHandle:
        definition = task if isinstance(task, TaskDefinition) else registry.task(task)
        # Live runs keep the definition they were given; recovered ones use the registry's.
        index = self._next("task")
        issued = f"schedule(task {definition.name!r})"
        rec = self._match("task", index, definition.name, issued)
        wait = Wait(definition.name)
        if rec is None:
            input_json = storable(input, what=f"input of task {definition.name!r}")
            task_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.engine.tasks.start(self, definition, task_id, input_json, wait, first_attempt=1)
            return StepHandle(wait, issued)
        task_id = rec.payload["taskExecutionId"]
        assert self.history is not None
        outcome = self.history.outcomes.get(task_id)
        self.rng.getrandbits(128)  # keep the random sequence aligned with the first run
        if outcome is None:  # in flight when the process died: run it again
            attempts = self.history.task_attempts.get(task_id, 0)
            self.engine.tasks.start(
                self,
                definition,
                task_id,
                rec.payload.get("input"),
                wait,
                first_attempt=attempts + 1,
                recorded=True,
                resume_at=self.history.task_retry_at.get(task_id),
            )
        elif outcome.type is E.TASK_COMPLETED:
            wait.set_value(
                serde.from_json(
                    outcome.payload.get("output"), definition.return_type, what="task result"
                )
            )
        elif outcome.type is E.TASK_CANCELLED:
            wait.set_error(WorkflowCancelled(workflow_id=self.workflow_id))
        else:
            wait.set_error(self.engine.tasks.failure(definition, outcome.payload))
        return StepHandle(wait, issued)

    async def schedule(self, task: TaskDefinition[Any] | str, input: Any) -> Any:
        handle = self.schedule_async(task, input)
        return await self._block(handle._wait)

    # -- timers -------------------------------------------------------------------------

    async def sleep(self, duration: timedelta | float) -> None:
        seconds = _seconds(duration, "sleep duration")
        assert seconds is not None
        await self._timer(self.engine.clock.now() + seconds)

    async def sleep_until(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise InvalidInput("sleep_until needs a timezone-aware datetime (e.g. tzinfo=UTC)")
        await self._timer(when.timestamp())

    async def _timer(self, fire_at: float) -> None:
        index = self._next("timer")
        timer_id = f"timer-{index + 1}"
        rec = self._match("timer", index, None, "sleep()")
        wait = Wait(timer_id)
        if rec is not None:
            assert self.history is not None
            if timer_id in self.history.outcomes:
                await anyio.lowlevel.checkpoint()
                return
            fire_at = epoch_of(rec.payload["fireAt"]) or fire_at
            self.move(RunStatus.WAITING)
        else:
            # Armed at once: the writer commits in order, and whatever follows the sleep
            # waits for earlier outcomes to be durable before any side effect.
            self.emit(
                E.TIMER_STARTED,
                TimerStarted(timer_id=timer_id, fire_at=_iso(fire_at)),
                status=RunStatus.WAITING,
            )
        entry = self.engine.deadlines.add(fire_at, lambda: self._fire_timer(timer_id, wait))
        try:
            await self._block(wait)
        except WorkflowCancelled:
            self.emit(E.TIMER_CANCELLED, TimerCancelled(timer_id=timer_id))
            raise
        finally:
            entry.cancel()

    def _fire_timer(self, timer_id: str, wait: Wait) -> None:
        if wait.done:
            return
        self.emit(E.TIMER_FIRED, TimerFired(timer_id=timer_id), status=RunStatus.RUNNING)
        wait.set_value(None)

    # -- promises -----------------------------------------------------------------------

    async def promise(self, name: str, timeout: timedelta | float | None, type_hint: Any) -> Any:
        if not isinstance(name, str) or not name:
            raise InvalidInput("a promise needs a non-empty name")
        seconds = _seconds(timeout, "promise timeout")
        index = self._next("promise")
        rec = self._match("promise", index, name, f"promise({name!r})")
        if name in self.promise_names:
            raise InvalidInput(
                f"promise {name!r} was already used in this run; promise names are unique per "
                "run (add a counter or a step name, e.g. 'approval-2')"
            )
        self.promise_names.add(name)
        wait = Wait(name)
        promise_id = f"{self.execution_id}:{name}"
        if rec is not None:
            assert self.history is not None
            outcome = self.history.outcomes.get(rec.payload["promiseId"])
            if outcome is not None:
                await anyio.lowlevel.checkpoint()
                return self._promise_outcome(name, outcome.type, outcome.payload, type_hint)
            timeout_at = epoch_of(rec.payload.get("timeoutAt"))
            created = None
            self.move(RunStatus.WAITING)
        else:
            pending_at = self.engine.bell_gen  # before the store is asked (see PromiseWait)
            now = self.engine.clock.now()
            # to the microsecond, as the store keeps it: both judge the deadline alike
            timeout_at = None if seconds is None else as_stored(now + seconds)
            schema = serde.schema_of(type_hint)
            schema_json = None if schema is None else serde.dumps(schema)
            created = self.emit(
                E.PROMISE_CREATED,
                PromiseCreated(
                    promise_id=promise_id,
                    promise_name=name,
                    timeout_at=None if timeout_at is None else _iso(timeout_at),
                    schema=schema,
                ),
                status=RunStatus.WAITING,
            )
            created.new_promise = NewPromise(
                promise_id, self.execution_id, name, timeout_at, schema_json, now
            )
        # Waiting (and the timeout's deadline) starts now, not when the creation is
        # committed: the writer commits in order, so a resolution or a timeout is always
        # written after the promise it settles.
        pending = self.promise_waits[name] = PromiseWait(wait, promise_id, type_hint, timeout_at)
        entry = None
        if timeout_at is not None:
            entry = self.engine.deadlines.add(
                timeout_at, lambda: self.engine.promise_timed_out(self, name)
            )
        try:
            if created is not None:
                await self.engine.writer.wait(created.ticket)
                if created.error is not None:
                    raise created.error
                row: PromiseRow = created.result
                if row.status is PromiseStatus.PENDING:
                    pending.pending_at = max(pending.pending_at or 0, pending_at)
                else:
                    self.engine.inbox_changed(self)  # resolved before we got here: deliver it
            else:
                self.engine.inbox_changed(self)
        except BaseException:
            self.promise_waits.pop(name, None)
            if entry is not None:
                entry.cancel()
            raise
        try:
            value = await self._block(wait)
        finally:
            self.promise_waits.pop(name, None)
            if entry is not None:
                entry.cancel()
        return value

    def _promise_outcome(
        self, name: str, kind: EventType, payload: dict[str, Any], type_hint: Any
    ) -> Any:
        if kind is E.PROMISE_RESOLVED:
            return serde.from_json(
                payload.get("value"), type_hint, what=f"value of promise {name!r}"
            )
        if kind is E.PROMISE_REJECTED:
            reason = payload.get("error", "")
            raise PromiseRejected(
                f"promise {name!r} was rejected: {reason}", name=name, reason=reason
            )
        raise _timed_out(name)

    def time_out_promise(self, name: str) -> None:
        """The engine decided that the promise timed out (see Engine.promise_timed_out):
        deliver that; the store learns it with the PROMISE_TIMEOUT event."""
        pending = self.promise_waits.pop(name)
        self.emit(
            E.PROMISE_TIMEOUT,
            PromiseTimeoutPayload(promise_id=pending.promise_id, promise_name=name),
            status=RunStatus.RUNNING,
            write=Write(timed_out=[pending.promise_id]),
        )
        pending.wait.set_error(_timed_out(name))

    def deliver_promise(self, row: PromiseRow, *, marked: bool = False) -> bool:
        """Hand a promise the store settled to the waiting code; False if nobody waits for
        it yet. ``marked``: the store row says it was delivered already."""
        pending = self.promise_waits.get(row.name)
        if pending is None:
            return False
        wait, promise_id, type_hint = pending.wait, pending.promise_id, pending.type_hint
        if row.status is PromiseStatus.RESOLVED:
            try:
                serde.from_json(row.value, type_hint, what=f"value of promise {row.name!r}")
            except Exception as exc:  # a validator of the type may raise anything
                # Resolved before the workflow declared its type: refuse and keep waiting.
                text = str(exc) if isinstance(exc, InvalidInput) else f"{type(exc).__name__}: {exc}"
                self.log_sink(None, "stderr", "ERROR", f"{text}; the promise is pending again")
                self.engine.writer.submit(Write(intents=[ResetPromise(row.id)]))
                return True
            kind: EventType = E.PROMISE_RESOLVED
            payload: _Payload = PromiseResolved(
                promise_id=promise_id,
                promise_name=row.name,
                value=row.value,
                resolved_by=row.resolved_by,
            )
        elif row.status is PromiseStatus.REJECTED:
            kind = E.PROMISE_REJECTED
            payload = PromiseRejectedPayload(
                promise_id=promise_id,
                promise_name=row.name,
                error=row.error or "",
                resolved_by=row.resolved_by,
            )
        else:
            kind = E.PROMISE_TIMEOUT
            payload = PromiseTimeoutPayload(promise_id=promise_id, promise_name=row.name)
        self.promise_waits.pop(row.name, None)
        self.emit(
            kind,
            payload,
            status=RunStatus.RUNNING,
            write=Write(delivered=[] if marked else [row.id]),
        )
        try:
            wait.set_value(self._promise_outcome(row.name, kind, payload.dump(), type_hint))
        except Exception as exc:
            wait.set_error(exc)
        return True

    # -- signals ------------------------------------------------------------------------

    async def wait_for_signal(
        self, name: str, timeout: timedelta | float | None, type_hint: Any
    ) -> Any:
        seconds = _seconds(timeout, "signal timeout")
        index = self._next("signal")
        timer_id = f"signal-{index + 1}" if seconds is not None else None
        history = self.history
        fire_at: float | None = None
        if history is not None and timer_id is not None and timer_id in history.timer_starts:
            if timer_id in history.outcomes and history.outcomes[timer_id].type is E.TIMER_FIRED:
                raise SignalTimeout(f"no signal {name!r} arrived in time", name=name)
            fire_at = epoch_of(history.timer_starts[timer_id].payload["fireAt"])
        recorded = history.next_signal(name) if history is not None else None
        if recorded is not None:
            await anyio.lowlevel.checkpoint()
            return serde.from_json(
                recorded.payload.get("value"), type_hint, what=f"signal {name!r}"
            )
        wait = Wait(name)
        if timer_id is not None and fire_at is None:
            assert seconds is not None
            fire_at = self.engine.clock.now() + seconds
            await self.commit(
                E.TIMER_STARTED, TimerStarted(timer_id=timer_id, fire_at=_iso(fire_at))
            )
        entry = None
        if timer_id is not None and fire_at is not None:
            entry = self.engine.deadlines.add(fire_at, lambda: self._fire_timer(timer_id, wait))
        self.signal_waits[name].append((wait, timer_id, type_hint))
        self.engine.inbox_changed(self)
        try:
            result = await self._block(wait)
        finally:
            queue = self.signal_waits.get(name)
            if queue is not None:
                self.signal_waits[name] = deque(w for w in queue if w[0] is not wait)
            if entry is not None:
                entry.cancel()
        if isinstance(result, _Delivered):
            return serde.from_json(result.value, type_hint, what=f"signal {name!r}")
        raise SignalTimeout(f"no signal {name!r} arrived in time", name=name)

    def deliver_signal(self, signal_id: str, name: str, value: Any) -> bool:
        queue = self.signal_waits.get(name)
        # A scan may still see a signal whose "delivered" mark is not yet committed.
        if not queue or signal_id in self.delivered_signals:
            return False
        self.delivered_signals.add(signal_id)
        wait, timer_id, _ = queue.popleft()
        extra = []
        if timer_id is not None:
            extra.append(TimerCancelled(timer_id=timer_id))
        self.emit(
            E.SIGNAL_RECEIVED,
            SignalReceived(signal_id=signal_id, signal_name=name, value=value),
            intents=[MarkSignalDelivered(signal_id)],
        )
        for payload in extra:
            self.emit(E.TIMER_CANCELLED, payload)
        wait.set_value(_Delivered(value))
        return True

    # -- child workflows ----------------------------------------------------------------

    def schedule_workflow_async(
        self, workflow: WorkflowDefinition[Any] | str, input: Any, workflow_id: str | None
    ) -> StepHandle:
        definition = (
            workflow if isinstance(workflow, WorkflowDefinition) else registry.workflow(workflow)
        )
        index = self._next("child")
        issued = f"schedule_workflow({definition.name!r})"
        rec = self._match("child", index, definition.name, issued)
        wait = Wait(definition.name)
        if rec is None:
            child_execution_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            child_workflow_id = workflow_id or f"{self.workflow_id}/{definition.name}-{index + 1}"
            input_json = storable(input, what=f"input of child workflow {definition.name!r}")
            self.children.add(child_execution_id)
            self.child_waits[child_execution_id] = wait
            # Recorded now, in the code's order; the child itself is created right after.
            self.emit(
                E.CHILD_WORKFLOW_INITIATED,
                ChildWorkflowInitiated(
                    child_execution_id=child_execution_id,
                    child_workflow_id=child_workflow_id,
                    kind=definition.name,
                    input=input_json,
                ),
            )
            self.engine.start_soon(
                self._start_child,
                definition,
                child_execution_id,
                child_workflow_id,
                input_json,
                wait,
            )
            return StepHandle(wait, issued)
        self.rng.getrandbits(128)
        child_execution_id = rec.payload["childExecutionId"]
        assert self.history is not None
        outcome = self.history.outcomes.get(child_execution_id)
        if outcome is not None:
            self._settle_child(wait, definition, outcome.type, outcome.payload)
        else:
            self.children.add(child_execution_id)
            self.child_waits[child_execution_id] = wait
            self.engine.start_soon(self.engine.follow_child, self, child_execution_id)
        return StepHandle(wait, issued)

    async def _start_child(
        self,
        definition: WorkflowDefinition[Any],
        child_execution_id: str,
        child_workflow_id: str,
        input_json: Any,
        wait: Wait,
    ) -> None:
        try:
            await self.engine.create_run(
                definition,
                input_json,
                workflow_id=child_workflow_id,
                execution_id=child_execution_id,
                parent=self,
            )
        except Exception as exc:
            wait.set_error(exc)

    def deliver_child(
        self, child_execution_id: str, status: RunStatus, output: Any, error: Any
    ) -> None:
        wait = self.child_waits.pop(child_execution_id, None)
        if wait is None:
            return
        self.children.discard(child_execution_id)
        if status is RunStatus.COMPLETED:
            payload: _Payload = ChildWorkflowCompleted(
                child_execution_id=child_execution_id, output=output
            )
            kind: EventType = E.CHILD_WORKFLOW_COMPLETED
        else:
            info = (
                ErrorInfo.model_validate(error)
                if error
                else ErrorInfo(type="WorkflowCancelled", message="cancelled")
            )
            payload = ChildWorkflowFailedPayload(
                child_execution_id=child_execution_id,
                error=info,
                cancelled=status is RunStatus.CANCELLED,
            )
            kind = E.CHILD_WORKFLOW_FAILED
        self.emit(kind, payload)
        definition = registry.find_workflow(wait.label)
        self._settle_child(wait, definition, kind, payload.dump())

    def _settle_child(
        self,
        wait: Wait,
        definition: WorkflowDefinition[Any] | None,
        kind: EventType,
        payload: dict[str, Any],
    ) -> None:
        if kind is E.CHILD_WORKFLOW_COMPLETED:
            return_type = definition.return_type if definition else Any
            try:
                wait.set_value(
                    serde.from_json(payload.get("output"), return_type, what="child result")
                )
            except InvalidInput as exc:
                wait.set_error(exc)
            return
        error = payload.get("error") or {}
        child = payload.get("childExecutionId", "")
        wait.set_error(
            ChildWorkflowFailed(
                f"child workflow {wait.label!r} "
                + (
                    "was cancelled"
                    if payload.get("cancelled")
                    else f"failed: {error.get('type')}: {error.get('message')}"
                ),
                child_workflow_id=child,
                cause=error,
            )
        )

    # -- operations, state, time --------------------------------------------------------

    async def run_operation(self, name: str, fn: Callable[[], Any], type_hint: Any) -> Any:
        index = self._next("operation")
        rec = self._match("operation", index, name, f"run({name!r})")
        if type_hint is Any:
            type_hint = typing.get_type_hints(fn).get("return", Any) if callable(fn) else Any
        if rec is not None:
            await anyio.lowlevel.checkpoint()
            return serde.from_json(rec.payload.get("result"), type_hint, what=f"result of {name!r}")
        if self.cancel_requested and not self._cancel_delivered:
            self._cancel_delivered = True
            raise WorkflowCancelled(workflow_id=self.workflow_id)
        await self.outcomes_durable()
        with logcapture.step(self.scope):
            result = fn()
            if inspect.isawaitable(result):
                result = await result
        data = storable(result, what=f"result of ctx.run({name!r})")
        await self.commit(
            E.OPERATION_COMPLETED, OperationCompleted(operation_name=name, result=data)
        )
        return serde.from_json(data, type_hint, what=f"result of {name!r}")

    def current_time(self) -> datetime:
        index = self._next("operation")
        rec = self._match("operation", index, "current_time", "current_time()")
        if rec is not None:
            return datetime.fromisoformat(rec.payload["result"])
        now = _iso(self.engine.clock.now())
        self.emit(
            E.OPERATION_COMPLETED,
            OperationCompleted(operation_name="current_time", result=now.isoformat()),
        )
        return now

    def get_state(self, key: str, default: Any, type_hint: Any) -> Any:
        if key not in self.state:
            return default
        return serde.from_json(self.state[key], type_hint, what=f"state {key!r}")

    def set_state(self, key: str, value: Any) -> None:
        index = self._next("state")
        rec = self._match("state", index, f"set:{key}", f"set({key!r})")
        if rec is not None:
            self.state[key] = rec.payload.get("value")
            return
        data = storable(value, what=f"value of state {key!r} (ctx.set)")
        self.emit(E.STATE_SET, StateSet(key=key, value=data))
        self.state[key] = data

    def clear_state(self, key: str) -> None:
        index = self._next("state")
        rec = self._match("state", index, f"clear:{key}", f"clear({key!r})")
        self.state.pop(key, None)
        if rec is None:
            self.emit(E.STATE_CLEARED, StateCleared(key=key))

    # -- cancellation -------------------------------------------------------------------

    async def request_cancel(self, reason: str = "") -> None:
        if self.cancel_requested:
            return
        self.cancel_requested = True
        await self.commit(
            E.CANCELLATION_REQUESTED,
            CancellationRequested(reason=reason),
            intents=[FlagCancel(self.execution_id)],
        )
        self.deliver_cancel()

    def deliver_cancel(self) -> None:
        if self.waits:
            self._cancel_delivered = True
        for wait in list(self.waits):
            if wait not in self.task_cancellers:
                wait.set_error(WorkflowCancelled(workflow_id=self.workflow_id))
        for cancel in list(self.task_cancellers.values()):
            cancel()
        for child in list(self.children):
            self.engine.start_soon(self.engine.cancel_execution, child)

    # -- the workflow itself --------------------------------------------------------------

    async def execute(self) -> None:
        """Run (or replay) the workflow to its end and record how it ended."""
        definition = self.definition
        try:
            value = serde.from_json(self.input_json, definition.input_type, what="workflow input")
            args: tuple[Any, ...] = (self.ctx, value) if definition.takes_input else (self.ctx,)
            with logcapture.step(self.scope):
                if definition.is_async:
                    result = await definition.fn(*args)
                else:
                    result = await anyio.to_thread.run_sync(
                        lambda: definition.fn(*args),
                        limiter=self.engine.workflow_threads,
                        abandon_on_cancel=True,
                    )
            if self.history is not None:
                self.history.check_complete("the workflow returned")
            output = storable(result, what=f"result of workflow {definition.name!r}")
        except anyio.get_cancelled_exc_class():
            raise  # the engine is stopping: the run stays active for the next engine
        except WorkflowCancelled:
            await self._finish(RunStatus.CANCELLED, None, None)
            return
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit and the like are the workflow's failure too:
            # let out, they would stop the engine's loop and every run with it.
            if not is_code_failure(exc):
                raise
            if self.replaying and _missing_definition(exc):
                # The first execution got past this point, so the code is fine: this
                # process has not defined everything yet (cells run in another order
                # after a restart). Wait for the next definition instead of failing.
                self.log_sink(
                    None,
                    "stderr",
                    "WARNING",
                    f"replay paused: {type(exc).__name__}: {exc}; it resumes when the "
                    "missing definition is registered (run the cell that defines it)",
                )
                await self.engine.park(self)
                return
            await self._finish(RunStatus.FAILED, None, error_info(exc))
            return
        if self.cancel_requested:
            await self._finish(RunStatus.CANCELLED, output, None)
        else:
            await self._finish(RunStatus.COMPLETED, output, None)

    async def _finish(self, status: RunStatus, output: Any, error: ErrorInfo | None) -> None:
        try:
            output_json = None if output is None else serde.dumps(output)
            write = self._end(status, output_json, output, error)
        except Exception as exc:
            if status is RunStatus.FAILED:
                raise
            # The output has no JSON form after all: the run fails, saying so, rather
            # than staying RUNNING for ever.
            failure = error_info(unstorable("result of the workflow", exc))
            status, output = RunStatus.FAILED, None
            error = failure
            write = self._end(status, None, None, error)
        await self.engine.writer.wait(write.ticket)
        if write.error is not None:
            raise write.error
        self.engine.run_finished(self, status, output, None if error is None else error.dump())

    def _end(
        self, status: RunStatus, output_json: str | None, output: Any, error: ErrorInfo | None
    ) -> Write:
        """Record the terminal event; raises, having changed nothing, if it cannot be encoded."""
        error_json = None if error is None else serde.dumps(error.dump())
        now = self.engine.clock.now()
        kind: EventType
        payload: _Payload
        if status is RunStatus.COMPLETED:
            kind, payload = E.WORKFLOW_COMPLETED, WorkflowCompleted(output=output)
        elif status is RunStatus.CANCELLED:
            kind, payload = E.WORKFLOW_CANCELLED, WorkflowCancelledPayload(output=output)
        else:
            assert error is not None
            kind, payload = E.WORKFLOW_EXECUTION_FAILED, WorkflowExecutionFailed(error=error)
        end = RunUpdate(self.execution_id, status, now, output_json, error_json)
        # The terminal event is the record; the run row follows lazily, with other runs'
        # ends in one UPDATE (within STATUS_DELAY; a crash in between is repaired on
        # recovery from the event).
        before = self.end, self.status
        self.end, self.status = end, status
        try:
            write = self.emit(kind, payload)
        except BaseException:
            self.end, self.status = before  # nothing was recorded (emit is atomic)
            raise
        self.engine.writer.note_status(self.execution_id, self.row_update)
        return write

    async def fail_on_fault(self, exc: BaseException) -> bool:
        """End the run FAILED after an unexpected error in the engine's handling of it (a
        run left RUNNING would never finish). Returns whether that was recorded."""
        if self.end is not None:
            return False
        await self._finish(RunStatus.FAILED, None, error_info(exc))
        return True


def _missing_definition(exc: BaseException) -> bool:
    """A name, task or child workflow this process has not defined (yet)."""
    return isinstance(exc, NameError | UnknownWorkflowKind | UnknownTask)


class _Delivered:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


__all__ = ["DeterminismViolation", "Run", "error_info"]
