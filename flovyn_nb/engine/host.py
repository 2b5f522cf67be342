"""The seam between a run and the engine that hosts it.

:class:`Host` lists everything a run (and the task runner) uses of its engine; the engine
implements it, and nothing below it imports the engine. :class:`TaskOwner` is what the
task runner needs of a run, :class:`TaskStarter` what a run needs of the task runner.
Runs are named by execution id across the seam, so the host needs no run type either.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio

from flovyn_nb.definitions import Registry, TaskDefinition, WorkflowDefinition
from flovyn_nb.engine.clock import Clock
from flovyn_nb.engine.deadlines import DeadlineQueue
from flovyn_nb.engine.waits import Wait
from flovyn_nb.engine.writer import Write, Writer
from flovyn_nb.errors import WorkflowCancelled
from flovyn_nb.model import EventType, RunStatus, _Payload
from flovyn_nb.store import EventRow, Intent, LogRow, Store

__all__ = ["Host", "RemoteStarter", "Started", "TaskOwner", "TaskStarter"]


@dataclass(frozen=True)
class Started:
    execution_id: str
    workflow_id: str
    kind: str
    existing: bool


class TaskOwner(Protocol):
    """What the task runner needs of the run whose task it runs."""

    @property
    def workflow_id(self) -> str: ...
    @property
    def execution_id(self) -> str: ...

    task_cancellers: dict[Wait, Callable[[], None]]

    def emit(
        self, kind: EventType, payload: _Payload | None, *, intents: Iterable[Intent] = ()
    ) -> Write: ...
    async def outcomes_durable(self) -> None: ...
    def log_sink(
        self, task_execution_id: str | None, stream: str, level: str, message: str
    ) -> None: ...
    def cancelled_error(self) -> WorkflowCancelled: ...


class TaskStarter(Protocol):
    """What a run needs of the task runner."""

    def start(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        wait: Wait,
        *,
        first_attempt: int,
        recorded: bool = False,
        resume_at: float | None = None,
    ) -> None: ...


class RemoteStarter(Protocol):
    """What a run needs for work other engines do (``engine.remote``)."""

    def enqueue(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        queue: str,
        wait: Wait,
    ) -> None:
        """Record the task's schedule and put it in the store's task queue (one commit)."""
        ...

    def follow(
        self, run: TaskOwner, definition: TaskDefinition[Any], task_id: str, wait: Wait
    ) -> None:
        """Wait for the outcome of a task queued before (a replay)."""
        ...

    def follow_child(self, parent_id: str, child_execution_id: str) -> None:
        """Deliver the child's end to its parent when it ends, in any process."""
        ...


class Host(Protocol):
    """What a run needs of its engine. Everything is called on the engine's loop."""

    # services: the group-commit writer, time, the deadline queue, tasks, definitions
    @property
    def writer(self) -> Writer: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def deadlines(self) -> DeadlineQueue: ...
    @property
    def tasks(self) -> TaskStarter: ...
    @property
    def remote(self) -> RemoteStarter: ...
    @property
    def queues(self) -> list[str]:
        """The queues this engine serves (a task or child on another one goes there)."""
        ...

    @property
    def registry(self) -> Registry: ...
    @property
    def store(self) -> Store:
        """For reads a run needs (e.g. the step cache); writes go through the writer."""
        ...

    @property
    def rng(self) -> random.Random:
        """Retry jitter (not replayed: only the timing depends on it)."""
        ...

    @property
    def draining(self) -> bool:
        """Stopping gracefully: no new step starts (the next owner starts it)."""
        ...

    @property
    def workflow_threads(self) -> anyio.CapacityLimiter:
        """Bounds the threads of ``def`` workflows."""
        ...

    @property
    def bell_gen(self) -> int:
        """Commits by other processes seen so far (see ``PromiseWait.pending_at``)."""
        ...

    def in_loop(self) -> bool:
        """Whether the caller is the engine loop's thread (blocking calls would deadlock)."""
        ...

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a coroutine in the engine's task group; its errors are kept, not raised."""
        ...

    async def sleep_until(self, when: float) -> None: ...

    # notifications
    def observe_event(self, execution_id: str, row: EventRow) -> None: ...
    def submit_log(self, execution_id: str, row: LogRow) -> None:
        """Queue a log line (thread-safe: sync steps log from worker threads)."""
        ...

    def inbox_changed(self, execution_id: str) -> None:
        """The run waits on something new: scan its inbox (promises, signals)."""
        ...

    def promise_timed_out(self, execution_id: str, name: str) -> None: ...

    # the run registry
    async def create_run(
        self,
        definition: WorkflowDefinition[Any],
        input_json: Any,
        workflow_id: str,
        *,
        execution_id: str | None = None,
        parent_id: str | None = None,
        caller: int = 0,
        queue: str = "default",
    ) -> Started: ...
    async def follow_child(self, parent_id: str, child_execution_id: str) -> None: ...
    async def cancel_execution(self, execution_id: str) -> None: ...
    async def park(self, execution_id: str) -> None: ...
    def run_finished(
        self,
        execution_id: str,
        workflow_id: str,
        parent_id: str | None,
        status: RunStatus,
        output: Any,
        error: Any,
    ) -> None: ...
