"""Flovyn's mock contexts: unit-test a workflow or a task function without an engine.

Names and methods follow ``flovyn.testing`` (``MockWorkflowContext``, ``MockTaskContext``,
``TimeController``):

```python
ctx = MockWorkflowContext()
ctx.mock_task_result(GreetTask, GreetOutput(greeting="Hello, Test!"))
result = await HelloWorldWorkflow().run(ctx, HelloInput(name="Test"))
assert ctx.executed_tasks == [("greet", HelloInput(name="Test"))]
```

Tasks and workflows are named as in ``ctx.schedule``: by name, by the object ``@task``
or ``@workflow`` returned, or by a decorated class. Unlike Flovyn's mock, ``sleep`` and
``sleep_until`` move the time controller forward (time stays deterministic either way).
"""

from __future__ import annotations

import inspect
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flovyn_nb.context import StateKeys
from flovyn_nb.definitions import TaskDefinition, WorkflowDefinition, registry
from flovyn_nb.errors import (
    ChildWorkflowFailed,
    InvalidInput,
    PromiseRejected,
    PromiseTimeout,
    TaskCancelled,
    TaskFailed,
    WorkflowCancelled,
)
from flovyn_nb.task_context import Done, Sent

__all__ = [
    "MockTaskContext",
    "MockTaskHandle",
    "MockWorkflowContext",
    "ProgressReport",
    "StreamEvent",
    "TimeController",
]


@dataclass
class ProgressReport:
    """A progress report a task made (``MockTaskContext.progress_reports``)."""

    progress: float
    message: str | None
    timestamp: datetime


@dataclass
class StreamEvent:
    """A stream item a task emitted: ``event_type`` is token, progress, data or error."""

    event_type: str
    payload: Any
    timestamp: datetime


class TimeController:
    """Simulated time for mock contexts: it moves only when a test (or a sleep) says so."""

    def __init__(self, start_time: datetime | None = None) -> None:
        self._current_time = start_time or datetime.now(UTC)
        self._pending_timers: list[tuple[datetime, Callable[[], Any]]] = []

    @property
    def current_time(self) -> datetime:
        """The simulated time now."""
        return self._current_time

    def current_time_millis(self) -> int:
        """The simulated time as milliseconds since the epoch."""
        return int(self._current_time.timestamp() * 1000)

    async def advance(self, duration: timedelta) -> None:
        """Move time forward by ``duration``, firing the timers that fall due (in order)."""
        self._move(self._current_time + duration)

    def _move(self, to: datetime) -> None:
        self._current_time = max(self._current_time, to)
        due = sorted((t for t in self._pending_timers if t[0] <= to), key=lambda t: t[0])
        self._pending_timers = [t for t in self._pending_timers if t[0] > to]
        for _, callback in due:
            callback()

    def schedule_timer(self, duration: timedelta, callback: Callable[[], Any]) -> str:
        """Call ``callback`` once time has advanced by ``duration``; returns a timer id."""
        self._pending_timers.append((self._current_time + duration, callback))
        return str(uuid.uuid4())


def _kind(target: Any, what: str) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, TaskDefinition | WorkflowDefinition):
        return target.name
    if isinstance(target, type):
        definition = registry.task(target) if what == "task" else registry.workflow(target)
        return str(definition.name)
    raise InvalidInput(
        f"{what} must be a name or a @{what}-decorated function or class, got {target!r}"
    )


class MockTaskHandle:
    """What the mock ``schedule_async`` returns: ``await h`` or ``await h.result()``."""

    def __init__(self, task_execution_id: str, outcome: Callable[[], Any]) -> None:
        self.task_execution_id = task_execution_id
        self._outcome = outcome

    async def result(self) -> Any:
        return self._outcome()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result().__await__()


class MockWorkflowContext:
    """A workflow context whose tasks, child workflows, promises and signals the test
    scripts; it records what the workflow did (``executed_tasks``, ``state``, ...)."""

    def __init__(
        self,
        workflow_execution_id: str | None = None,
        time_controller: TimeController | None = None,
    ) -> None:
        self._workflow_execution_id = workflow_execution_id or str(uuid.uuid4())
        self._time_controller = time_controller or TimeController()
        self._random_counter = 0
        self._rng = random.Random(0)
        self._state: dict[str, Any] = {}
        self._executed_tasks: list[tuple[str, Any]] = []
        self._executed_workflows: list[tuple[str, Any]] = []
        self._task_results: dict[str, Any] = {}
        self._workflow_results: dict[str, Any] = {}
        self._task_failures: dict[str, BaseException] = {}
        self._workflow_failures: dict[str, BaseException] = {}
        self._promise_values: dict[str, Any] = {}
        self._promise_rejections: dict[str, str] = {}
        self._signal_queues: dict[str, list[Any]] = {}
        self._run_results: dict[str, Any] = {}
        self._cancellation_requested = False
        self._logger = logging.getLogger(f"flovyn_nb.test.workflow.{self._workflow_execution_id}")

    # -- identity, time, randomness ---------------------------------------------------------

    @property
    def workflow_execution_id(self) -> str:
        return self._workflow_execution_id

    @property
    def workflow_id(self) -> str:
        return self._workflow_execution_id

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    @property
    def time_controller(self) -> TimeController:
        return self._time_controller

    def current_time(self) -> datetime:
        return self._time_controller.current_time

    def current_time_millis(self) -> int:
        return self._time_controller.current_time_millis()

    def random_uuid(self) -> uuid.UUID:
        self._random_counter += 1
        return uuid.UUID(int=self._random_counter)

    def random(self) -> float:
        return self._rng.random()

    # -- steps ---------------------------------------------------------------------------

    def _task_outcome(self, kind: str, input: Any) -> Any:
        if kind in self._task_failures:
            raise self._task_failures[kind]
        if kind in self._task_results:
            result = self._task_results[kind]
            return result(input) if callable(result) else result
        raise TaskFailed(f"No mock result configured for task {kind}", task=kind)

    def _workflow_outcome(self, kind: str, input: Any) -> Any:
        if kind in self._workflow_failures:
            raise self._workflow_failures[kind]
        if kind in self._workflow_results:
            result = self._workflow_results[kind]
            return result(input) if callable(result) else result
        raise ChildWorkflowFailed(f"No mock result configured for workflow {kind}")

    async def schedule(
        self,
        task: Any,
        input: Any = None,
        *,
        timeout: timedelta | float | None = None,
        retry_policy: Any = None,
        queue: str | None = None,
    ) -> Any:
        kind = _kind(task, "task")
        self._executed_tasks.append((kind, input))
        return self._task_outcome(kind, input)

    def schedule_async(
        self,
        task: Any,
        input: Any = None,
        *,
        timeout: timedelta | float | None = None,
        retry_policy: Any = None,
        queue: str | None = None,
    ) -> MockTaskHandle:
        kind = _kind(task, "task")
        self._executed_tasks.append((kind, input))
        return MockTaskHandle(str(self.random_uuid()), lambda: self._task_outcome(kind, input))

    async def schedule_workflow(
        self,
        workflow: Any,
        input: Any = None,
        *,
        workflow_id: str | None = None,
        timeout: timedelta | None = None,
        queue: str | None = None,
    ) -> Any:
        kind = _kind(workflow, "workflow")
        self._executed_workflows.append((kind, input))
        return self._workflow_outcome(kind, input)

    def schedule_workflow_async(
        self,
        workflow: Any,
        input: Any = None,
        *,
        workflow_id: str | None = None,
        queue: str | None = None,
    ) -> MockTaskHandle:
        kind = _kind(workflow, "workflow")
        self._executed_workflows.append((kind, input))
        return MockTaskHandle(
            workflow_id or str(self.random_uuid()), lambda: self._workflow_outcome(kind, input)
        )

    async def sleep(self, duration: timedelta | float) -> None:
        seconds = duration if isinstance(duration, timedelta) else timedelta(seconds=duration)
        await self._time_controller.advance(seconds)

    async def sleep_until(self, until: datetime) -> None:
        self._time_controller._move(until)

    async def promise(
        self, name: str, *, timeout: timedelta | None = None, type_hint: Any = Any
    ) -> Any:
        if name in self._promise_rejections:
            reason = self._promise_rejections[name]
            raise PromiseRejected(reason, name=name, reason=reason)
        if name in self._promise_values:
            return self._promise_values[name]
        raise PromiseTimeout(f"Promise '{name}' not resolved in mock", name=name)

    async def wait_for_signal(
        self, name: str, *, timeout: timedelta | None = None, type_hint: Any = Any
    ) -> Any:
        queue = self._signal_queues.get(name)
        if queue:
            return queue.pop(0)
        raise TimeoutError(f"No signals with name '{name}' in queue (mock)")

    def has_signal(self, name: str) -> bool:
        return bool(self._signal_queues.get(name))

    def pending_signal_count(self, name: str) -> int:
        return len(self._signal_queues.get(name, []))

    def drain_signals(self, name: str, type_hint: Any = Any) -> list[Any]:
        return self._signal_queues.pop(name, [])

    async def get(self, key: str, default: Any = None, *, type_hint: Any = Any) -> Any:
        return self._state.get(key, default)

    async def set(self, key: str, value: Any) -> None:
        self._state[key] = value

    async def clear(self, key: str) -> None:
        self._state.pop(key, None)

    async def clear_all(self) -> None:
        self._state.clear()

    def state_keys(self) -> StateKeys:
        return StateKeys(self._state)

    async def run(
        self,
        name: str,
        fn: Callable[[], Any | Awaitable[Any]],
        *,
        max_attempts: int = 1,
        retry_interval: timedelta | None = None,
    ) -> Any:
        if name in self._run_results:
            return self._run_results[name]
        result = fn()
        return await result if inspect.isawaitable(result) else result

    @property
    def is_cancellation_requested(self) -> bool:
        return self._cancellation_requested

    def check_cancellation(self) -> None:
        if self._cancellation_requested:
            raise WorkflowCancelled(workflow_id=self._workflow_execution_id)

    # -- scripting and inspection (the test's side) ---------------------------------------

    def mock_task_result(self, task: Any, result: Any) -> None:
        """Script a task's result (a value, or a function of the task's input)."""
        self._task_results[_kind(task, "task")] = result

    def mock_task_failure(self, task: Any, error: BaseException) -> None:
        """Script a task to fail with ``error`` (e.g. ``TaskFailed("card declined")``)."""
        self._task_failures[_kind(task, "task")] = error

    def mock_workflow_result(self, workflow: Any, result: Any) -> None:
        """Script a child workflow's result (a value, or a function of its input)."""
        self._workflow_results[_kind(workflow, "workflow")] = result

    def mock_workflow_failure(self, workflow: Any, error: BaseException) -> None:
        """Script a child workflow to fail with ``error``."""
        self._workflow_failures[_kind(workflow, "workflow")] = error

    def mock_promise_value(self, name: str, value: Any) -> None:
        """The value ``ctx.promise(name)`` returns."""
        self._promise_values[name] = value

    def mock_promise_rejection(self, name: str, error: str) -> None:
        """``ctx.promise(name)`` raises ``PromiseRejected`` with this reason."""
        self._promise_rejections[name] = error

    def mock_signal_value(self, name: str, value: Any) -> None:
        """Queue a signal; ``wait_for_signal(name)`` takes them in order."""
        self._signal_queues.setdefault(name, []).append(value)

    def mock_run_result(self, name: str, result: Any) -> None:
        """The value ``ctx.run(name, fn)`` returns without calling ``fn``."""
        self._run_results[name] = result

    def request_cancellation(self) -> None:
        """Cancellation is requested: ``check_cancellation`` raises from now on."""
        self._cancellation_requested = True

    @property
    def executed_tasks(self) -> list[tuple[str, Any]]:
        """(task name, input) of every task the workflow scheduled, in order."""
        return self._executed_tasks

    @property
    def executed_workflows(self) -> list[tuple[str, Any]]:
        """(workflow name, input) of every child workflow, in order."""
        return self._executed_workflows

    @property
    def state(self) -> dict[str, Any]:
        """The workflow's state as ``ctx.set`` left it."""
        return self._state


class MockTaskContext:
    """A task context that records progress, heartbeats and stream items. Its methods
    work awaited (async tasks) and called plainly (``def`` tasks), like the real one."""

    def __init__(
        self, task_execution_id: str | None = None, attempt: int = 1, is_cancelled: bool = False
    ) -> None:
        self._task_execution_id = task_execution_id or str(uuid.uuid4())
        self._attempt = attempt
        self._is_cancelled = is_cancelled
        self._progress_reports: list[ProgressReport] = []
        self._heartbeat_count = 0
        self._stream_events: list[StreamEvent] = []
        self._logger = logging.getLogger(f"flovyn_nb.test.task.{self._task_execution_id}")

    @property
    def task_execution_id(self) -> str:
        return self._task_execution_id

    @property
    def attempt(self) -> int:
        return self._attempt

    @property
    def is_cancelled(self) -> bool:
        return self._is_cancelled

    @property
    def logger(self) -> logging.Logger:
        return self._logger

    def cancellation_error(self) -> TaskCancelled:
        return TaskCancelled(f"Task {self._task_execution_id} was cancelled")

    def report_progress(
        self, progress: float, message: str | None = None, *, details: str | None = None
    ) -> Done:
        """Record a progress report.

        Raises:
            InvalidInput: ``progress`` is outside 0..1.
        """
        if not 0.0 <= progress <= 1.0:
            raise InvalidInput(f"progress must be between 0.0 and 1.0, got {progress}")
        now = datetime.now(UTC)
        self._progress_reports.append(ProgressReport(progress, message or details, now))
        return Done()

    def heartbeat(self) -> Done:
        self._heartbeat_count += 1
        return Done()

    def _record(self, event_type: str, payload: Any) -> Sent:
        self._stream_events.append(StreamEvent(event_type, payload, datetime.now(UTC)))
        return Sent(True)

    def stream(self, event_type: str, data: Any) -> Sent:
        return self._record(event_type, data)

    def stream_token(self, text: str) -> Sent:
        return self._record("token", {"text": text})

    def stream_progress(self, progress: float, details: str | None = None) -> Sent:
        return self._record("progress", {"progress": progress, "details": details})

    def stream_data(self, data: Any) -> Sent:
        return self._record("data", {"data": data})

    def stream_error(self, message: str, code: str | None = None) -> Sent:
        return self._record("error", {"message": message, "code": code})

    # -- inspection (the test's side) -----------------------------------------------------

    def set_cancelled(self, cancelled: bool = True) -> None:
        self._is_cancelled = cancelled

    @property
    def progress_reports(self) -> list[ProgressReport]:
        return self._progress_reports

    @property
    def heartbeat_count(self) -> int:
        return self._heartbeat_count

    @property
    def stream_events(self) -> list[StreamEvent]:
        return self._stream_events

    @property
    def streamed_tokens(self) -> list[str]:
        return [e.payload["text"] for e in self._stream_events if e.event_type == "token"]
