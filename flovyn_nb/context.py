"""What workflow and task code sees: ``WorkflowContext`` and ``TaskContext``.

Every method of the workflow context is a *command*: it is recorded in the run's history
and, when the run is replayed after a restart, answered from that history instead of
being executed again. Names follow the Flovyn Python SDK.

Async workflows get :class:`WorkflowContext` (``await ctx.schedule(...)``); plain ``def``
workflows get :class:`SyncWorkflowContext`, whose methods block and return the value.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Coroutine, Generator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from flovyn_nb.errors import InvalidInput, WorkflowCancelled
from flovyn_nb.task_context import TaskContext

if TYPE_CHECKING:
    from flovyn_nb.definitions import RetryPolicy, TaskDefinition, WorkflowDefinition

__all__ = [
    "Blocking",
    "Outcome",
    "RunCommands",
    "StateKeys",
    "StepHandle",
    "SyncWorkflowContext",
    "TaskContext",
    "WorkflowContext",
]

T = TypeVar("T")


class Outcome(Protocol):
    """A step's outcome that workflow code waits for (the engine's ``Wait``)."""

    @property
    def done(self) -> bool: ...

    async def result(self) -> Any: ...


class Blocking(Protocol):
    """How a ``def`` workflow's thread reaches the engine's loop (see :class:`RunCommands`)."""

    def blocking(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """From a ``def`` workflow's thread: run ``fn(*args)`` on the loop and wait."""
        ...


class RunCommands(Blocking, Protocol):
    """What the contexts need from a run: its identity and its commands (the engine's
    ``Run`` implements it). Every command runs on the engine's loop; a ``def`` workflow's
    thread reaches it through :meth:`blocking` and :meth:`blocking_sync`."""

    @property
    def execution_id(self) -> str: ...
    @property
    def workflow_id(self) -> str: ...
    @property
    def logger(self) -> logging.Logger: ...
    @property
    def cancel_requested(self) -> bool: ...
    @property
    def cancel_reason(self) -> str: ...
    @property
    def rng(self) -> random.Random: ...

    def schedule_async(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> StepHandle: ...
    async def schedule(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> Any: ...
    def schedule_workflow_async(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any,
        workflow_id: str | None,
        queue: str | None = None,
    ) -> StepHandle: ...
    async def sleep(self, duration: timedelta | float) -> None: ...
    async def sleep_until(self, when: datetime) -> None: ...
    async def promise(
        self, name: str, timeout: timedelta | float | None, type_hint: Any
    ) -> Any: ...
    async def wait_for_signal(
        self, name: str, timeout: timedelta | float | None, type_hint: Any
    ) -> Any: ...
    async def run_operation(
        self,
        name: str,
        fn: Callable[[], Any],
        type_hint: Any,
        max_attempts: int = 1,
        retry_interval: timedelta | float = 0,
    ) -> Any: ...
    def get_state(self, key: str, default: Any, type_hint: Any) -> Any: ...
    def set_state(self, key: str, value: Any) -> None: ...
    def clear_state(self, key: str) -> None: ...
    def clear_all_state(self) -> None: ...
    def state_keys(self) -> list[str]: ...
    def current_time(self) -> datetime: ...
    def pending_signals(self, name: str) -> int: ...
    def drain_signals(self, name: str, type_hint: Any) -> list[Any]: ...
    def patched(self, patch_id: str) -> bool: ...
    def deprecate_patch(self, patch_id: str) -> None: ...

    def blocking_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """From a ``def`` workflow's thread: call ``fn(*args)`` on the loop and wait."""
        ...


_NO_DEFAULT: Any = object()  # marker: ctx.promise(default=...) was not given


def _described(type_hint: Any, description: str | None, default: Any) -> Any:
    """``type_hint`` annotated with a description and a default, so that its JSON schema
    (recorded with the promise) carries them; validation is unchanged."""
    if description is None and default is _NO_DEFAULT:
        return type_hint
    from typing import Annotated

    import pydantic

    extra: dict[str, Any] = {}
    if description is not None:
        extra["description"] = description
    if default is not _NO_DEFAULT:
        extra["json_schema_extra"] = {
            "default": pydantic.TypeAdapter(type_hint).dump_python(default, mode="json")
        }
    return Annotated[type_hint, pydantic.Field(**extra)]


class StepHandle:
    """A task or child workflow started with ``schedule_async`` / ``schedule_workflow_async``.

    ``await handle`` or ``await handle.result()`` (async workflows, as in Flovyn) or
    ``handle.result()`` (sync workflows) gives its value or raises its error.
    """

    def __init__(self, wait: Outcome, label: str, run: Blocking) -> None:
        self._wait = wait
        self.label = label
        self._run = run

    @property
    def done(self) -> bool:
        return self._wait.done

    def __await__(self) -> Generator[Any, None, Any]:
        return self._wait.result().__await__()

    def result(self) -> Any:
        """The step's value: a coroutine to await in an async workflow; in a sync
        workflow, blocks until the step is done and returns the value.

        Raises:
            TaskFailed: (sync workflows; awaited otherwise) the step failed.
            ChildWorkflowFailed: (likewise) the child workflow failed.
        """
        if _in_event_loop():
            # An async workflow's code runs on the engine's loop: hand back the awaitable.
            return self._wait.result()
        return self._run.blocking(self._wait.result)

    def __repr__(self) -> str:
        return f"<StepHandle {self.label} {'done' if self.done else 'pending'}>"


class StateKeys(list[str]):
    """``ctx.state_keys()``'s list; ``await`` on it gives the same list."""

    def __await__(self) -> Generator[Any, None, list[str]]:
        return list(self)
        yield  # a generator that never suspends


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _ContextBase:
    def __init__(self, run: RunCommands) -> None:
        self._run = run

    @property
    def workflow_execution_id(self) -> str:
        """The run's execution id (unique, stable across replays)."""
        return self._run.execution_id

    @property
    def workflow_id(self) -> str:
        """The run's workflow id (the one given to ``start_workflow``)."""
        return self._run.workflow_id

    @property
    def logger(self) -> logging.Logger:
        """Log lines go to this run's step logs (muted while replaying)."""
        return self._run.logger

    @property
    def is_cancellation_requested(self) -> bool:
        return self._run.cancel_requested

    def check_cancellation(self) -> None:
        """Raise :class:`WorkflowCancelled` if cancellation was requested."""
        if self._run.cancel_requested:
            reason = self._run.cancel_reason
            message = "workflow was cancelled" + (f": {reason}" if reason else "")
            raise WorkflowCancelled(message, workflow_id=self._run.workflow_id, reason=reason)


class WorkflowContext(_ContextBase):
    """The context of an ``async def`` workflow."""

    async def schedule(
        self,
        task: TaskDefinition[Any] | str,
        input: Any = None,
        *,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> Any:
        """Run a task durably and return its (typed) result.

        ``timeout`` (a timedelta or seconds) and ``retry_policy`` override the task
        definition's for this call only, as in Flovyn's SDK.

        ``queue``: a queue this run's engine does not serve sends the task to the store's
        task queue, where an engine serving it (e.g. ``flovyn-nb worker --queue gpu``)
        claims it; the workflow waits for its outcome across restarts, and ``task`` may be
        a name only that worker defines (result untyped). Otherwise it runs here.

        Raises:
            TaskFailed: the task failed on its last attempt (``TaskTimeout`` for timeouts).
            InvalidInput: a bad ``queue``.
        """
        return await self._run.schedule(task, input, timeout, retry_policy, queue)

    def schedule_async(
        self,
        task: TaskDefinition[Any] | str,
        input: Any = None,
        *,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> StepHandle:
        """Start a task and return a handle to await later (fan-out / fan-in); the
        options as for :meth:`schedule`. Raises: InvalidInput (a bad ``queue``)."""
        return self._run.schedule_async(task, input, timeout, retry_policy, queue)

    async def schedule_workflow(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any = None,
        *,
        workflow_id: str | None = None,
        timeout: timedelta | float | None = None,
        queue: str | None = None,
    ) -> Any:
        """Run a child workflow and return its result.

        ``queue``: the child run's queue; by default the parent's own (not this engine's:
        a child goes where its parent would, and one that outlives this engine is taken
        over by the engines that serve its parent). On a queue this engine does not serve
        the child waits for an engine that does; the parent waits for its end.
        ``timeout`` is accepted and, as in Flovyn's SDK, not enforced.

        Raises:
            ChildWorkflowFailed: the child failed or was cancelled.
            InvalidInput: a bad ``queue`` or ``timeout``.
        """
        _check_timeout(timeout)
        return await self._run.schedule_workflow_async(workflow, input, workflow_id, queue)

    def schedule_workflow_async(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any = None,
        *,
        workflow_id: str | None = None,
        queue: str | None = None,
    ) -> StepHandle:
        """Start a child workflow; a handle to await later (``queue``: see
        :meth:`schedule_workflow`). Raises: InvalidInput (a bad ``queue``)."""
        return self._run.schedule_workflow_async(workflow, input, workflow_id, queue)

    async def sleep(self, duration: timedelta | float) -> None:
        """A durable timer: survives restarts and keeps its original deadline."""
        await self._run.sleep(duration)

    async def sleep_until(self, when: datetime) -> None:
        await self._run.sleep_until(when)

    async def promise(
        self,
        name: str,
        *,
        timeout: timedelta | float | None = None,
        type_hint: Any = Any,
        description: str | None = None,
        default: Any = _NO_DEFAULT,
    ) -> Any:
        """Wait for someone to resolve the promise ``name`` (a human, a CLI, a process).

        Args:
            name: the promise's name in this run.
            timeout: give up after this long (PromiseTimeout).
            type_hint: the type the value must have (its JSON schema builds the form).
            description: markdown shown above the promise's form (what to decide, how).
            default: a value the form starts with.

        Both ``description`` and ``default`` go into the JSON schema recorded in the
        promise's PROMISE_CREATED event, where every panel and process reads them.

        Raises:
            PromiseTimeout: nobody resolved it within ``timeout``.
            PromiseRejected: it was rejected.
        """
        return await self._run.promise(name, timeout, _described(type_hint, description, default))

    async def wait_for_signal(
        self, name: str, *, timeout: timedelta | float | None = None, type_hint: Any = Any
    ) -> Any:
        """Wait for the next signal ``name`` (signals that came earlier are buffered).

        Raises:
            SignalTimeout: no signal came within ``timeout``.
        """
        return await self._run.wait_for_signal(name, timeout, type_hint)

    async def run(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        type_hint: Any = Any,
        max_attempts: int = 1,
        retry_interval: timedelta | float = 0,
    ) -> Any:
        """Run a side effect once and record its result; replays return the record.

        A failing ``fn`` is tried again, up to ``max_attempts`` in all, ``retry_interval``
        (a timedelta or seconds) apart; only the final outcome counts.

        Raises:
            InvalidInput: ``max_attempts`` < 1 or a negative ``retry_interval``.
        """
        return await self._run.run_operation(name, fn, type_hint, max_attempts, retry_interval)

    async def get(self, key: str, default: Any = None, *, type_hint: Any = Any) -> Any:
        """Read workflow state (rebuilt from history on replay); ``await`` it, as in Flovyn."""
        return self._run.get_state(key, default, type_hint)

    async def set(self, key: str, value: Any) -> None:
        """Set workflow state ``key`` (recorded as ``STATE_SET``).

        Raises:
            UnstorableValue: ``value`` has no JSON form; nothing is recorded.
        """
        self._run.set_state(key, value)

    async def clear(self, key: str) -> None:
        """Remove workflow state ``key`` (recorded as ``STATE_CLEARED``)."""
        self._run.clear_state(key)

    async def clear_all(self) -> None:
        """Remove every state key (one ``STATE_CLEARED`` per key, in key order)."""
        self._run.clear_all_state()

    def state_keys(self) -> StateKeys:
        """The keys of the workflow state, sorted: a plain list, as in Flovyn, that may
        also be awaited (``await ctx.state_keys()``) like the other state calls."""
        return StateKeys(self._run.state_keys())

    def current_time(self) -> datetime:
        """The time, recorded: a replay sees the same value."""
        return self._run.current_time()

    def current_time_millis(self) -> int:
        """:meth:`current_time` as milliseconds since the Unix epoch (recorded)."""
        return _millis(self._run.current_time())

    def has_signal(self, name: str) -> bool:
        """Whether a signal ``name`` is buffered (recorded; consumes nothing)."""
        return self._run.pending_signals(name) > 0

    def pending_signal_count(self, name: str) -> int:
        """How many signals ``name`` are buffered (recorded; consumes nothing)."""
        return self._run.pending_signals(name)

    def drain_signals(self, name: str, type_hint: Any = Any) -> list[Any]:
        """Consume every buffered signal ``name``, oldest first; a replay returns the same
        values. Signals the engine has not seen yet are left for later calls."""
        return self._run.drain_signals(name, type_hint)

    def random(self) -> float:
        """A deterministic random number in [0, 1) (same sequence on replay)."""
        return self._run.rng.random()

    def patched(self, patch_id: str) -> bool:
        """Whether this run takes the new branch of a code change named ``patch_id``.

        ``if ctx.patched("new-pricing"): <new code> else: <old code>`` lets an edited
        workflow keep serving runs recorded before the edit: False while replaying a
        history recorded before the patch (the run went past this point without it),
        True otherwise. A run that takes the new branch records a ``PATCH_MARKER`` event,
        so its replays take it too. The answer is fixed for the rest of the run.

        Raises:
            InvalidInput: ``patch_id`` is not a non-empty string.
        """
        return self._run.patched(patch_id)

    def deprecate_patch(self, patch_id: str) -> None:
        """Mark ``patch_id`` as applied everywhere: call it where ``patched`` was, once no
        run recorded before the patch is in flight, and keep only the new code. (Markers
        take no part in matching, so this only checks the id; it exists so code reads as
        in Temporal and DBOS.)

        Raises:
            InvalidInput: ``patch_id`` is not a non-empty string.
        """
        self._run.deprecate_patch(patch_id)

    def random_uuid(self) -> uuid.UUID:
        """A deterministic UUID (same sequence on replay)."""
        return uuid.UUID(int=self._run.rng.getrandbits(128), version=4)


class SyncWorkflowContext(_ContextBase):
    """The context of a plain ``def`` workflow: the same commands, blocking."""

    def schedule(
        self,
        task: TaskDefinition[Any] | str,
        input: Any = None,
        *,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> Any:
        return self._run.blocking(self._run.schedule, task, input, timeout, retry_policy, queue)

    def schedule_async(
        self,
        task: TaskDefinition[Any] | str,
        input: Any = None,
        *,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> StepHandle:
        result: StepHandle = self._run.blocking_sync(
            self._run.schedule_async, task, input, timeout, retry_policy, queue
        )
        return result

    def schedule_workflow(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any = None,
        *,
        workflow_id: str | None = None,
        timeout: timedelta | float | None = None,
        queue: str | None = None,
    ) -> Any:
        _check_timeout(timeout)
        handle = self.schedule_workflow_async(workflow, input, workflow_id=workflow_id, queue=queue)
        return handle.result()

    def schedule_workflow_async(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any = None,
        *,
        workflow_id: str | None = None,
        queue: str | None = None,
    ) -> StepHandle:
        result: StepHandle = self._run.blocking_sync(
            self._run.schedule_workflow_async, workflow, input, workflow_id, queue
        )
        return result

    def sleep(self, duration: timedelta | float) -> None:
        self._run.blocking(self._run.sleep, duration)

    def sleep_until(self, when: datetime) -> None:
        self._run.blocking(self._run.sleep_until, when)

    def promise(
        self, name: str, *, timeout: timedelta | float | None = None, type_hint: Any = Any
    ) -> Any:
        return self._run.blocking(self._run.promise, name, timeout, type_hint)

    def wait_for_signal(
        self, name: str, *, timeout: timedelta | float | None = None, type_hint: Any = Any
    ) -> Any:
        return self._run.blocking(self._run.wait_for_signal, name, timeout, type_hint)

    def run(
        self,
        name: str,
        fn: Callable[[], Any],
        *,
        type_hint: Any = Any,
        max_attempts: int = 1,
        retry_interval: timedelta | float = 0,
    ) -> Any:
        return self._run.blocking(
            self._run.run_operation, name, fn, type_hint, max_attempts, retry_interval
        )

    def get(self, key: str, default: Any = None, *, type_hint: Any = Any) -> Any:
        return self._run.blocking_sync(self._run.get_state, key, default, type_hint)

    def set(self, key: str, value: Any) -> None:
        self._run.blocking_sync(self._run.set_state, key, value)

    def clear(self, key: str) -> None:
        self._run.blocking_sync(self._run.clear_state, key)

    def clear_all(self) -> None:
        self._run.blocking_sync(self._run.clear_all_state)

    def state_keys(self) -> list[str]:
        result: list[str] = self._run.blocking_sync(self._run.state_keys)
        return result

    def current_time(self) -> datetime:
        result: datetime = self._run.blocking_sync(self._run.current_time)
        return result

    def current_time_millis(self) -> int:
        return _millis(self.current_time())

    def has_signal(self, name: str) -> bool:
        return self.pending_signal_count(name) > 0

    def pending_signal_count(self, name: str) -> int:
        result: int = self._run.blocking_sync(self._run.pending_signals, name)
        return result

    def drain_signals(self, name: str, type_hint: Any = Any) -> list[Any]:
        result: list[Any] = self._run.blocking_sync(self._run.drain_signals, name, type_hint)
        return result

    def random(self) -> float:
        result: float = self._run.blocking_sync(self._run.rng.random)
        return result

    def patched(self, patch_id: str) -> bool:
        """See :meth:`WorkflowContext.patched`."""
        result: bool = self._run.blocking_sync(self._run.patched, patch_id)
        return result

    def deprecate_patch(self, patch_id: str) -> None:
        """See :meth:`WorkflowContext.deprecate_patch`."""
        self._run.blocking_sync(self._run.deprecate_patch, patch_id)

    def random_uuid(self) -> uuid.UUID:
        bits: int = self._run.blocking_sync(self._run.rng.getrandbits, 128)
        return uuid.UUID(int=bits, version=4)


def _check_timeout(timeout: object) -> None:
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    ok = isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0
    if timeout is not None and not ok:
        raise InvalidInput(f"ctx.schedule_workflow: timeout must be >= 0 seconds, got {timeout!r}")


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)
