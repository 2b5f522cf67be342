"""Work that crosses engines: tasks on a queue this engine does not serve, and child runs
executed by another process.

Owner side (a run of this engine): ``ctx.schedule(task, x, queue="gpu")`` records
``TASK_SCHEDULED`` (with ``queue``) and puts the task in the store's task queue in the
same commit (see ``store/taskqueue.py``). The run then waits as for a local task; when
another process commits (the doorbell), this engine reads the rows of the tasks its runs
wait on and records the outcome (``TASK_COMPLETED`` / ``TASK_FAILED``) in the run's
history, as the inbox does for a promise resolved elsewhere. A child run on a queue this
engine does not serve is created unowned; its end is found the same way.

Claimer side (an engine serving the queue with the task registered): whenever it claims
runs (at start, on the work bell, on heartbeats, when a peer died) it also claims queued
tasks, and runs their attempts with the engine's task runner (``engine.tasks``: retries,
backoff, timeouts, logs into the owning run's logs). The attempts' progress and the
outcome go into the task's row instead of a history; a write that finds the task no
longer held (the run was cancelled, or another engine took it over) cancels the attempt.

Queue limits (``fn.queue(..., concurrency=)``) apply to runs only: a claimer takes at
most ``max_concurrent_tasks`` queued tasks at once, whatever the queue's limits say.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import anyio

from flovyn_nb import serde
from flovyn_nb.definitions import Registry, RetryPolicy, TaskDefinition
from flovyn_nb.engine import ownership
from flovyn_nb.engine.clock import Clock
from flovyn_nb.engine.host import TaskOwner, TaskStarter
from flovyn_nb.engine.tasks import task_failure
from flovyn_nb.engine.threads import offload
from flovyn_nb.engine.waits import Wait
from flovyn_nb.engine.writer import Write, Writer
from flovyn_nb.errors import InvalidInput, UnknownTask, WorkflowCancelled
from flovyn_nb.model import (
    ErrorInfo,
    EventType,
    TaskCancelled,
    TaskCompleted,
    TaskFailedPayload,
    TaskRetryScheduled,
    TaskScheduled,
    TaskStarted,
    _Payload,
)
from flovyn_nb.store import Intent, LogRow, RequestCancel, Store
from flovyn_nb.store import taskqueue as tq

E = EventType

__all__ = ["RemoteWork", "policy_from", "policy_json"]


def policy_json(policy: RetryPolicy) -> dict[str, Any]:
    """A retry policy as JSON (exception classes by name, as ``is_retryable`` knows them)."""

    def seconds(value: timedelta | float) -> float:
        return value.total_seconds() if isinstance(value, timedelta) else float(value)

    return {
        "maxAttempts": policy.max_attempts,
        "initialInterval": seconds(policy.initial_interval),
        "backoffCoefficient": policy.backoff_coefficient,
        "maxInterval": seconds(policy.max_interval),
        "jitter": policy.jitter,
        "nonRetryableErrors": [
            e if isinstance(e, str) else e.__name__ for e in policy.non_retryable_errors
        ],
    }


def policy_from(data: Any, fallback: RetryPolicy) -> RetryPolicy:
    """The policy :func:`policy_json` wrote (``fallback`` when there is none)."""
    if not isinstance(data, dict):
        return fallback
    return RetryPolicy(
        max_attempts=int(data.get("maxAttempts", fallback.max_attempts)),
        initial_interval=float(data.get("initialInterval", 1.0)),
        backoff_coefficient=float(data.get("backoffCoefficient", 2.0)),
        max_interval=float(data.get("maxInterval", 60.0)),
        jitter=float(data.get("jitter", 0.1)),
        non_retryable_errors=tuple(str(e) for e in data.get("nonRetryableErrors", ())),
    )


class _Parent(Protocol):
    @property
    def child_waits(self) -> Mapping[str, Wait]: ...


class _Engine(Protocol):
    """What this needs of its engine (which implements it; imported by nothing here)."""

    @property
    def id(self) -> str: ...
    @property
    def store(self) -> Store: ...
    @property
    def writer(self) -> Writer: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def tasks(self) -> TaskStarter: ...
    @property
    def queues(self) -> list[str]: ...
    @property
    def draining(self) -> bool: ...
    @property
    def stale_after(self) -> float: ...
    @property
    def runs(self) -> Mapping[str, _Parent]: ...

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None: ...
    def submit_log(self, execution_id: str, row: LogRow) -> None: ...
    async def follow_child(self, parent_id: str, child_execution_id: str) -> None: ...


@dataclass(eq=False)
class _Awaited:
    """A queued task a run of this engine waits on."""

    run: TaskOwner
    definition: TaskDefinition[Any]
    wait: Wait


class _Claimed:
    """A task claimed from the queue, as the task runner sees its run (``TaskOwner``):
    what the runner would record in a history goes into the task's row instead."""

    def __init__(self, work: RemoteWork, row: tq.QueuedTask) -> None:
        self._work = work
        self.row = row
        self.task_cancellers: dict[Wait, Callable[[], None]] = {}
        self.final: Write | None = None  # the write of the outcome, once emitted
        self._last = 0  # ticket of the last progress write

    @property
    def workflow_id(self) -> str:
        return self.row.workflow_id

    @property
    def execution_id(self) -> str:
        return self.row.execution_id

    def emit(
        self, kind: EventType, payload: _Payload | None, *, intents: Iterable[Intent] = ()
    ) -> Write:
        engine = self._work.engine
        now = engine.clock.now()
        mine = self._intent(kind, payload, now)
        write = Write(intents=[*intents, *([] if mine is None else [mine])])
        if not write.intents:
            return write  # nothing to say (ticket 0: durable already)
        write.ticket = engine.writer.submit(write, urgent=True)
        if isinstance(mine, tq.FinishTask):
            self.final = write
        elif isinstance(mine, tq.TaskProgress):
            self._last = write.ticket
            engine.start_soon(self._still_held, write)
        return write

    def _intent(self, kind: EventType, payload: _Payload | None, now: float) -> Intent | None:
        engine_id = self._work.engine.id
        task_id = self.row.id
        if isinstance(payload, TaskStarted):
            return tq.TaskProgress(task_id, engine_id, payload.attempt, None, now)
        if isinstance(payload, TaskRetryScheduled):
            resume_at = payload.next_attempt_at.timestamp()
            return tq.TaskProgress(task_id, engine_id, payload.attempt, resume_at, now)
        if isinstance(payload, TaskCompleted):
            output = serde.dumps(payload.output)
            return tq.FinishTask(task_id, engine_id, tq.COMPLETED, payload.attempt, output,
                                 None, False, now)  # fmt: skip
        if isinstance(payload, TaskFailedPayload):
            error = serde.dumps(payload.error.dump())
            return tq.FinishTask(task_id, engine_id, tq.FAILED, payload.attempt, None, error,
                                 payload.timed_out, now)  # fmt: skip
        return None  # TASK_CANCELLED: the run closed the row itself

    async def _still_held(self, write: Write) -> None:
        """A progress write that finds the task gone (cancelled, taken over) stops it."""
        await self._work.engine.writer.wait(write.ticket)
        if write.error is None and write.result is False:
            self.cancel()

    def cancel(self) -> None:
        for cancel in list(self.task_cancellers.values()):
            cancel()

    async def outcomes_durable(self) -> None:
        # The attempt's number is in the row before its side effect starts.
        await self._work.engine.writer.wait(self._last)

    def log_sink(
        self, task_execution_id: str | None, stream: str, level: str, message: str
    ) -> None:
        engine = self._work.engine
        row = LogRow(
            self.row.execution_id, task_execution_id, engine.clock.now(), stream, level, message
        )
        engine.submit_log(self.row.execution_id, row)

    def cancelled_error(self) -> WorkflowCancelled:
        return WorkflowCancelled("the task's run was cancelled", workflow_id=self.workflow_id)


class RemoteWork:
    """Queued tasks and child runs across engines (see the module docs); on the loop."""

    def __init__(self, engine: _Engine, *, max_tasks: int) -> None:
        self.engine = engine
        self._max_tasks = max_tasks
        self._awaited: dict[str, _Awaited] = {}  # task id -> the run waiting for it
        self._children: dict[str, str] = {}  # child execution id -> parent execution id
        self._claimed: dict[str, _Claimed] = {}  # tasks this engine executes for others
        self._wake = anyio.Event()
        self._look = False
        self._claim = False
        self._reserved = 0  # tasks that claims in flight may still bring

    # -- what runs of this engine ask for -----------------------------------------------

    def enqueue(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        queue: str,
        wait: Wait,
    ) -> None:
        """Record the task's schedule and queue it in one commit; the run waits for it."""
        if self.engine.draining:
            # A graceful stop, as for a local task: nothing is recorded; the run is handed
            # back and its next owner queues the task on replay.
            return
        now = self.engine.clock.now()
        policy = definition.retry_policy
        timeout = definition.timeout.total_seconds() if definition.timeout else None
        run.emit(
            E.TASK_SCHEDULED,
            TaskScheduled(
                task_execution_id=task_id,
                task_kind=definition.name,
                input=input_json,
                max_attempts=policy.max_attempts,
                timeout_seconds=timeout,
                queue=queue,
            ),
            intents=[
                tq.QueueTask(
                    task_execution_id=task_id,
                    execution_id=run.execution_id,
                    workflow_id=run.workflow_id,
                    kind=definition.name,
                    queue=queue,
                    input_json=serde.dumps(input_json),
                    max_attempts=policy.max_attempts,
                    timeout_seconds=timeout,
                    retry_json=serde.dumps(policy_json(policy)),
                    now=now,
                )
            ],
        )
        self._await(run, definition, task_id, wait)

    def follow(
        self, run: TaskOwner, definition: TaskDefinition[Any], task_id: str, wait: Wait
    ) -> None:
        """A replayed run waits on a queued task recorded before: never run it here (its
        claimer may have finished it); wait for its row's outcome."""
        self._await(run, definition, task_id, wait)
        self.look_soon()

    def _await(
        self, run: TaskOwner, definition: TaskDefinition[Any], task_id: str, wait: Wait
    ) -> None:
        self._awaited[task_id] = _Awaited(run, definition, wait)
        # Cancelling the run cancels the task: its row is closed with TASK_CANCELLED.
        run.task_cancellers[wait] = lambda: self._cancel(task_id)

    def follow_child(self, parent_id: str, child_execution_id: str) -> None:
        """The run ``parent_id`` waits on a child another process may execute."""
        self._children[child_execution_id] = parent_id
        self.look_soon()

    async def cancel_elsewhere(self, execution_id: str, reason: str) -> None:
        """Ask a run this engine does not hold (a child on another queue) to cancel."""
        info = await offload(
            functools.partial(self.engine.store.get_run, execution_id, with_events=False)
        )
        if info is None or info.status.is_terminal:
            return
        with contextlib.suppress(InvalidInput):  # it ended meanwhile
            await self.engine.writer.commit(
                Write(intents=[RequestCancel(info.workflow_id, reason)]), rows_current=True
            )

    def _cancel(self, task_id: str) -> None:
        awaited = self._awaited.pop(task_id, None)
        if awaited is None:
            return
        run, wait = awaited.run, awaited.wait
        run.task_cancellers.pop(wait, None)
        run.emit(
            E.TASK_CANCELLED,
            TaskCancelled(task_execution_id=task_id),
            intents=[tq.CancelTasks((task_id,), self.engine.clock.now())],
        )
        wait.set_error(run.cancelled_error())

    # -- the service ---------------------------------------------------------------------

    def look_soon(self) -> None:
        """Another process committed: outcomes this engine waits for may be in."""
        if self._awaited or self._children or self._claimed:
            self._look = True
            self._wake.set()

    def claim_soon(self) -> None:
        """Queued tasks may wait for this engine (it claims runs now, too)."""
        self._claim = True
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = anyio.Event()
            if self._claim:
                self._claim = False
                await self._claim_tasks()
            if self._look:
                self._look = False
                await self._look_at_rows()
                await self._look_at_children()

    async def _look_at_rows(self) -> None:
        ids = [*self._awaited, *self._claimed]
        if not ids:
            return
        rows = await offload(self.engine.store.queued_tasks, ids)
        for row in rows:
            claimed = self._claimed.get(row.id)
            if claimed is not None and (row.status != tq.RUNNING or row.owner != self.engine.id):
                claimed.cancel()  # the run cancelled it, or it was taken over
            if row.id in self._awaited and row.status in (tq.COMPLETED, tq.FAILED):
                self._deliver(row)
        for task_id, awaited in list(self._awaited.items()):
            if awaited.run.execution_id not in self.engine.runs:
                del self._awaited[task_id]  # the run ended or went elsewhere

    def _deliver(self, row: tq.QueuedTask) -> None:
        awaited = self._awaited.pop(row.id)
        run, definition, wait = awaited.run, awaited.definition, awaited.wait
        run.task_cancellers.pop(wait, None)
        if row.status == tq.COMPLETED:
            run.emit(
                E.TASK_COMPLETED,
                TaskCompleted(task_execution_id=row.id, attempt=row.attempt, output=row.output),
            )
            try:
                wait.set_value(
                    serde.from_json(row.output, definition.return_type, what="task result")
                )
            except InvalidInput as err:
                wait.set_error(err)
            return
        error = (
            ErrorInfo.model_validate(row.error)
            if isinstance(row.error, dict)
            else ErrorInfo(type="TaskFailed", message="the task failed in another engine")
        )
        payload = TaskFailedPayload(
            task_execution_id=row.id, attempt=row.attempt, error=error, timed_out=row.timed_out
        )
        run.emit(E.TASK_FAILED, payload)
        wait.set_error(task_failure(definition, payload.dump()))

    async def _look_at_children(self) -> None:
        engine = self.engine
        for child, parent_id in list(self._children.items()):
            parent = engine.runs.get(parent_id)
            if parent is None or child not in parent.child_waits:
                del self._children[child]  # delivered, or the parent is gone
                continue
            if child in engine.runs:
                continue  # executed here: its end is delivered directly
            await engine.follow_child(parent_id, child)

    # -- the claimer ---------------------------------------------------------------------

    def claim_with_runs(self) -> None:
        """Claim queued tasks in the transaction of the claim of runs about to commit (it
        flushes the writer): one commit, one ring, instead of two."""
        write = self._claim_write()
        if write is not None:
            self.engine.writer.submit(write)
            self.engine.start_soon(self._take, write)

    async def _claim_tasks(self) -> None:
        write = self._claim_write()
        if write is not None:
            self.engine.writer.submit(write, urgent=True)
            await self._take(write)

    def _claim_write(self) -> Write | None:
        engine = self.engine
        limit = self._max_tasks - len(self._claimed) - self._reserved
        kinds = [d.name for d in engine.registry.definitions() if isinstance(d, TaskDefinition)]
        if engine.draining or limit < 1 or not kinds:
            return None
        now = engine.clock.now()
        judge = ownership.claim(
            engine_id=engine.id, kinds=(), now=now, stale_after=engine.stale_after
        )
        self._reserved += limit
        claim = tq.ClaimTasks(engine.id, kinds, engine.queues, judge.alive, limit, now)
        return Write(intents=[claim])

    async def _take(self, write: Write) -> None:
        """Execute the tasks a claim took, once it committed."""
        claim = write.intents[0]
        assert isinstance(claim, tq.ClaimTasks)
        try:
            await self.engine.writer.wait(write.ticket)
        finally:
            self._reserved -= claim.limit
        if write.error is not None:
            raise write.error
        for row in write.result or []:
            self._execute(row)

    def _execute(self, row: tq.QueuedTask) -> None:
        engine = self.engine
        try:
            definition = engine.registry.task(row.kind)
        except UnknownTask:  # unregistered since the claim: the row's claimer looks dead later
            return
        timeout = None if row.timeout_seconds is None else timedelta(seconds=row.timeout_seconds)
        definition = dataclasses.replace(
            definition,
            timeout=timeout,
            retry_policy=policy_from(row.retry, definition.retry_policy),
        )
        claimed = _Claimed(self, row)
        wait = Wait(row.kind)
        self._claimed[row.id] = claimed
        engine.tasks.start(
            claimed,
            definition,
            row.id,
            row.input,
            wait,
            first_attempt=row.attempt + 1,
            recorded=True,
            resume_at=row.resume_at,
        )
        engine.start_soon(self._settled, row.id, claimed, wait)

    async def _settled(self, task_id: str, claimed: _Claimed, wait: Wait) -> None:
        try:
            # The outcome is in its row (or the run cancelled the task): nothing to raise.
            with contextlib.suppress(Exception):
                await wait.result()
            if claimed.final is not None:
                await self.engine.writer.wait(claimed.final.ticket)
        finally:
            self._claimed.pop(task_id, None)
            self.claim_soon()  # a slot is free
