"""The core of a run: its state, how its commands are recorded, and replay matching.

Each family of commands (``tasks``, ``timers``, ``promises``, ``signals``, ``children``,
``operations``) is a mixin over :class:`RunBase` in a module of its own; ``engine.run``
puts them together. A run reaches its engine only through :class:`~flovyn_nb.engine.host.Host`.
"""

from __future__ import annotations

import hashlib
import logging
import random
import traceback
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from flovyn_nb import serde
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine import logcapture, threads
from flovyn_nb.engine.faults import describe
from flovyn_nb.engine.host import Host
from flovyn_nb.engine.waits import PromiseWait, Wait
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import EngineError, InvalidInput, PromiseTimeout, WorkflowCancelled
from flovyn_nb.history.replay import History
from flovyn_nb.model import ErrorInfo, EventType, RunStatus, TimerFired, WorkflowStarted, _Payload
from flovyn_nb.store import EventRow, Intent, LogRow, RunUpdate

T = TypeVar("T")
E = EventType
# Events that record no outcome: losing them in a crash only means the step runs again.
_NOT_RESULTS = frozenset(
    {E.WORKFLOW_STARTED, E.TASK_SCHEDULED, E.TASK_STARTED, E.TASK_RETRY_SCHEDULED}
)


def seconds_of(value: timedelta | float | None, what: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise InvalidInput(f"{what} must not be negative, got {value}")
    return seconds


def iso(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def timed_out(name: str) -> PromiseTimeout:
    return PromiseTimeout(f"promise {name!r} timed out", name=name)


def error_info(exc: BaseException) -> ErrorInfo:
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:  # an exception whose __str__ fails
        text = ""
    return ErrorInfo(type=type(exc).__name__, message=describe(exc), traceback=text)


class Delivered:
    """A signal's value, as handed to its waiter (a timeout hands nothing)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class RunBase:
    """The state of one run owned by this engine, and how its commands are recorded."""

    def __init__(
        self,
        host: Host,
        *,
        execution_id: str,
        workflow_id: str,
        definition: WorkflowDefinition[Any],
        input_json: Any,
        history: History | None,
        next_seq: int,
        parent_id: str | None,
    ) -> None:
        self.host = host
        self.execution_id = execution_id
        self.workflow_id = workflow_id
        self.definition = definition
        self.input_json = input_json
        self.history = history
        self.next_seq = next_seq
        self.parent_id = parent_id
        self.cancel_requested = bool(history and history.cancel_requested)
        self.cancel_reason = history.cancel_reason if history is not None else ""
        self._cancel_delivered = False
        self._counters: dict[str, int] = defaultdict(int)
        self.waits: set[Wait] = set()
        self.promise_waits: dict[str, PromiseWait] = {}
        self.signal_waits: dict[str, deque[tuple[Wait, str | None, Any]]] = defaultdict(deque)
        self.child_waits: dict[str, Wait] = {}
        self.children: set[str] = set()
        self.delivered_signals: set[str] = set()
        # signals the inbox scan saw with nobody waiting, by name, oldest first: what
        # has_signal / pending_signal_count / drain_signals answer from (id -> value)
        self.buffered_signals: dict[str, dict[str, Any]] = defaultdict(dict)
        self.promise_names: set[str] = set()
        # running tasks: their wait -> how to cancel them (they record TASK_CANCELLED first)
        self.task_cancellers: dict[Wait, Callable[[], None]] = {}
        self.state: dict[str, Any] = {}
        self.patch_memo: dict[str, bool] = {}  # ctx.patched() answers, fixed per run
        # A fork seeds from its origin, so ctx.random() replays the values the reused
        # steps saw; a retry's or a fork's new steps get ids of their own all the same
        # (the salt), or they would repeat the ids of the steps they supersede or copy.
        seed_id = (history.seed_from if history else None) or execution_id
        attempt = history.attempt if history else 1
        seed = int.from_bytes(hashlib.sha256(seed_id.encode()).digest()[:8], "big")
        self.rng = random.Random(seed)
        self._id_salt = (
            0
            if seed_id == execution_id and attempt == 1
            else int.from_bytes(hashlib.sha256(f"{execution_id}/{attempt}".encode()).digest()[:16])
        )
        self.scope = logcapture.StepScope(sink=self.log_sink, muted=lambda: self.replaying)
        self._logger: logging.Logger | None = None
        self.status = RunStatus.RUNNING
        # what the run row says (or will, once the writes handed to the writer commit)
        self.row_status = RunStatus.RUNNING
        self.end: RunUpdate | None = None  # how it ended (output, error), once it has
        self.result_ticket = 0  # writer ticket of the last recorded outcome

    def new_step_id(self) -> str:
        """The id of a new task or child run (deterministic: from the run's random numbers)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128) ^ self._id_salt, version=4))

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
        await self.host.writer.wait(self.result_ticket)

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
                self.execution_id, self.next_seq, kind.value, text, self.host.clock.now()
            )
            self.next_seq += 1
            write.events.append(row)
            self.host.observe_event(self.execution_id, row)
        write.ticket = self.host.writer.submit(write)
        if kind not in _NOT_RESULTS:
            self.result_ticket = write.ticket
        return write

    def move(self, status: RunStatus) -> None:
        """RUNNING <-> WAITING: the run row follows lazily (see ``Writer.note_status``)."""
        if status is not self.status:
            self.status = status
            self.host.writer.note_status(self.execution_id, self.row_update)

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
        return RunUpdate(self.execution_id, status, self.host.clock.now())

    async def commit(
        self,
        kind: EventType,
        payload: _Payload | None,
        *,
        intents: Iterable[Intent] = (),
        status: RunStatus | None = None,
    ) -> Any:
        write = self.emit(kind, payload, intents=intents, status=status)
        await self.host.writer.wait(write.ticket)
        if write.error is not None:
            raise write.error
        return write.result

    def log_sink(
        self, task_execution_id: str | None, stream: str, level: str, message: str
    ) -> None:
        row = LogRow(
            self.execution_id, task_execution_id, self.host.clock.now(), stream, level, message
        )
        self.host.submit_log(self.execution_id, row)

    def _next(self, family: str) -> int:
        index = self._counters[family]
        self._counters[family] = index + 1
        return index

    def _match(self, family: str, index: int, identity: str | None, issued: str) -> Any:
        if self.history is None:
            return None
        return self.history.match(family, index, identity, issued)

    def cancelled_error(self) -> WorkflowCancelled:
        """What the workflow sees once cancelled: the request's reason in ``reason``."""
        reason = self.cancel_reason
        message = "workflow was cancelled" + (f": {reason}" if reason else "")
        return WorkflowCancelled(message, workflow_id=self.workflow_id, reason=reason)

    async def _block(self, wait: Wait) -> Any:
        """Wait for an outcome; a pending cancellation is delivered here, once."""
        if not wait.done and self.cancel_requested and not self._cancel_delivered:
            self._cancel_delivered = True
            raise self.cancelled_error()
        self.waits.add(wait)
        try:
            return await wait.result()
        finally:
            self.waits.discard(wait)

    def _fire_timer(self, timer_id: str, wait: Wait) -> None:
        if wait.done:
            return
        self.emit(E.TIMER_FIRED, TimerFired(timer_id=timer_id), status=RunStatus.RUNNING)
        wait.set_value(None)

    # -- a `def` workflow's thread reaches the loop (see RunCommands) -----------------------

    def blocking(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        if self.host.in_loop():
            raise EngineError(threads.IN_LOOP)
        return threads.blocking(fn, *args)

    def blocking_sync(self, fn: Callable[..., T], *args: Any) -> T:
        if self.host.in_loop():
            raise EngineError(threads.IN_LOOP)
        return threads.blocking_sync(fn, *args)
