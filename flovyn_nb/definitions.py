"""``@workflow``, ``@task``, ``RetryPolicy`` and the registry they fill.

Definitions register when the decorator runs. Running the same cell again registers a new
function under the same name, which replaces the old one: live runs keep the code they
started with, recovered runs replay on the newest definition.
"""

from __future__ import annotations

import hashlib
import inspect
import random
import threading
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Generic, TypeVar, overload

from flovyn_nb.errors import InvalidInput, UnknownTask, UnknownWorkflowKind

__all__ = ["RetryPolicy", "TaskDefinition", "WorkflowDefinition", "registry", "task", "workflow"]

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how fast a failing task is tried again.

    Attempt ``n`` (1-based) that fails waits ``initial_interval * backoff_coefficient**(n-1)``
    (capped at ``max_interval``, spread by ``±jitter``) before attempt ``n + 1``.
    ``max_attempts=1`` means no retry. Exceptions listed in ``non_retryable_errors`` (by
    class or class name) fail the task at once.

    ``RetryPolicy()`` has the Flovyn SDK's defaults: 3 attempts (the first and two
    retries), ``initial_interval`` 1 s, ``backoff_coefficient`` 2.0, ``max_interval``
    1 min — so a failing attempt 1 waits ~1 s, attempt 2 ~2 s. ``jitter`` (±10 %) is
    ours. A ``@task`` given no ``retry_policy`` still runs once (``max_attempts=1``): a
    notebook user sees a failing cell's error at once, and asks for retries explicitly.
    """

    max_attempts: int = 3
    initial_interval: timedelta | float = timedelta(seconds=1)
    backoff_coefficient: float = 2.0
    max_interval: timedelta | float = timedelta(seconds=60)
    jitter: float = 0.1
    non_retryable_errors: tuple[type[BaseException] | str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("initial_interval", "max_interval"):  # seconds are fine too
            value = getattr(self, name)
            if isinstance(value, int | float):
                object.__setattr__(self, name, timedelta(seconds=value))
        if self.max_attempts < 1:
            raise InvalidInput(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if _seconds(self.initial_interval) < 0 or _seconds(self.max_interval) < 0:
            raise InvalidInput("RetryPolicy intervals must not be negative")
        if self.backoff_coefficient < 1:
            raise InvalidInput(
                f"RetryPolicy.backoff_coefficient must be >= 1, got {self.backoff_coefficient}"
            )
        if not 0 <= self.jitter <= 1:
            raise InvalidInput(f"RetryPolicy.jitter must be within 0..1, got {self.jitter}")

    def delay_after(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` before the next one."""
        initial, cap = _seconds(self.initial_interval), _seconds(self.max_interval)
        base = min(initial * self.backoff_coefficient ** (attempt - 1), cap)
        if self.jitter and base > 0:
            base *= 1 + (rng or random).uniform(-self.jitter, self.jitter)
        return max(base, 0.0)

    def is_retryable(self, exc: BaseException) -> bool:
        for item in self.non_retryable_errors:
            if isinstance(item, str):
                if any(cls.__name__ == item for cls in type(exc).__mro__):
                    return False
            elif isinstance(exc, item):
                return False
        return True


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _source_hash(fn: Callable[..., Any]) -> str:
    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):
        code = fn.__code__
        text = repr((code.co_code, code.co_consts, code.co_names))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # unresolvable forward refs in a notebook: fall back to untyped
        return {}


def _is_context_param(param: inspect.Parameter, hint: Any) -> bool:
    name = getattr(hint, "__name__", "")
    return param.name in ("ctx", "context") or name in (
        "WorkflowContext",
        "SyncWorkflowContext",
        "TaskContext",
    )


@dataclass
class _Signature:
    takes_ctx: bool
    takes_input: bool
    input_type: Any
    return_type: Any


def _inspect(fn: Callable[..., Any], what: str) -> _Signature:
    params = list(inspect.signature(fn).parameters.values())
    hints = _hints(fn)
    takes_ctx = bool(params) and _is_context_param(params[0], hints.get(params[0].name))
    data = params[1:] if takes_ctx else params
    if len(data) > 1:
        raise InvalidInput(
            f"{what} {fn.__qualname__} takes {len(data)} inputs; flovyn_nb passes one input "
            "value: take a single pydantic model, dataclass or dict instead"
        )
    input_type = hints.get(data[0].name, Any) if data else Any
    return _Signature(
        takes_ctx=takes_ctx,
        takes_input=bool(data),
        input_type=input_type,
        return_type=hints.get("return", Any),
    )


@dataclass(eq=False)
class TaskDefinition(Generic[R]):
    """A registered task. Call it directly to run the plain function (no durability)."""

    name: str
    fn: Callable[..., Any]
    retry_policy: RetryPolicy
    timeout: timedelta | None
    is_async: bool
    takes_ctx: bool
    takes_input: bool
    input_type: Any
    return_type: Any

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


@dataclass(eq=False)
class WorkflowDefinition(Generic[R]):
    """A registered workflow; start it with ``fn.start_workflow(definition, input)``."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    takes_input: bool
    input_type: Any
    return_type: Any
    source_hash: str
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"workflow {self.name!r} is not called directly; "
            f"start it with flovyn_nb.start_workflow({self.name}, input)"
        )


# A @task without a retry policy runs once (see RetryPolicy's docstring for why).
_NO_RETRY = RetryPolicy(max_attempts=1)

RegistryListener = Callable[[WorkflowDefinition[Any]], None]
TaskListener = Callable[[TaskDefinition[Any]], None]


class Registry:
    """Workflows and tasks by name; the newest definition of a name wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workflows: dict[str, WorkflowDefinition[Any]] = {}
        self._tasks: dict[str, TaskDefinition[Any]] = {}
        self._listeners: list[RegistryListener] = []
        self._task_listeners: list[TaskListener] = []

    def add_workflow(self, definition: WorkflowDefinition[Any]) -> None:
        with self._lock:
            old = self._workflows.get(definition.name)
            if old is not None:
                definition.version = old.version + 1
            self._workflows[definition.name] = definition
            listeners = list(self._listeners)
        for listener in listeners:
            listener(definition)

    def add_task(self, definition: TaskDefinition[Any]) -> None:
        with self._lock:
            self._tasks[definition.name] = definition
            listeners = list(self._task_listeners)
        for listener in listeners:
            listener(definition)

    def workflow(self, name: str) -> WorkflowDefinition[Any]:
        try:
            return self._workflows[name]
        except KeyError:
            raise UnknownWorkflowKind(
                f"no workflow named {name!r} is registered in this process; run the cell "
                "that defines it (known: " + (", ".join(sorted(self._workflows)) or "none") + ")",
                kind=name,
            ) from None

    def find_workflow(self, name: str) -> WorkflowDefinition[Any] | None:
        return self._workflows.get(name)

    def task(self, name: str) -> TaskDefinition[Any]:
        try:
            return self._tasks[name]
        except KeyError:
            raise UnknownTask(
                f"no task named {name!r} is registered; define it with @task(name={name!r})",
                name=name,
            ) from None

    def workflow_names(self) -> list[str]:
        with self._lock:
            return sorted(self._workflows)

    def definitions(self) -> list[WorkflowDefinition[Any] | TaskDefinition[Any]]:
        """Every registered workflow, then every task (the newest of each name)."""
        with self._lock:
            return [*self._workflows.values(), *self._tasks.values()]

    def subscribe(
        self, listener: RegistryListener, *, tasks: TaskListener | None = None
    ) -> Callable[[], None]:
        """Call ``listener`` for every workflow registered (and ``tasks`` for every task)."""
        with self._lock:
            self._listeners.append(listener)
            if tasks is not None:
                self._task_listeners.append(tasks)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)
                if tasks is not None and tasks in self._task_listeners:
                    self._task_listeners.remove(tasks)

        return unsubscribe


registry = Registry()


def _name_of(fn: Callable[..., Any], name: str | None) -> str:
    result = name or fn.__name__
    if not isinstance(result, str) or not result.strip():
        raise InvalidInput("a workflow or task name must be a non-empty string")
    return result


@overload
def workflow(fn: F, /) -> WorkflowDefinition[Any]: ...
@overload
def workflow(
    *, name: str | None = None, schedule: str | None = None, queue: str | None = None
) -> Callable[[Callable[..., Any]], WorkflowDefinition[Any]]: ...
def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    schedule: str | None = None,
    queue: str | None = None,
) -> Any:
    """Register a workflow: ``async def wf(ctx, input)`` or a plain ``def``.

    The function takes a :class:`~flovyn_nb.WorkflowContext` and at most one input value.
    Re-running the decorator under the same name replaces the definition.

    Args:
        name: the workflow's kind (defaults to the function name).
        schedule: a cron expression (UTC): an engine that registers the workflow records
            the schedule (named after the workflow) and a run starts at every slot.
        queue: the queue its scheduled runs wait in (default ``"default"``).

    Raises:
        InvalidInput: a bad name, signature, cron expression or queue name.
    """
    if schedule is not None:
        from flovyn_nb.cron import check_cron

        check_cron(schedule)
    if queue is not None and (not isinstance(queue, str) or not queue or queue.strip() != queue):
        raise InvalidInput(f"a queue name must be a non-empty string, got {queue!r}")

    def register(f: Callable[..., Any]) -> WorkflowDefinition[Any]:
        sig = _inspect(f, "workflow")
        if not sig.takes_ctx:
            raise InvalidInput(
                f"workflow {f.__qualname__} must take the workflow context as its first "
                "parameter: def my_workflow(ctx: WorkflowContext, input) -> ..."
            )
        definition: WorkflowDefinition[Any] = WorkflowDefinition(
            name=_name_of(f, name),
            fn=f,
            is_async=inspect.iscoroutinefunction(f),
            takes_input=sig.takes_input,
            input_type=sig.input_type,
            return_type=sig.return_type,
            source_hash=_source_hash(f),
        )
        if schedule is not None:
            definition.extra["schedule"] = schedule
        if queue is not None:
            definition.extra["queue"] = queue
        registry.add_workflow(definition)
        return definition

    return register(fn) if fn is not None else register


@overload
def task(fn: F, /) -> TaskDefinition[Any]: ...
@overload
def task(
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
    timeout: timedelta | float | None = None,
) -> Callable[[Callable[..., Any]], TaskDefinition[Any]]: ...
def task(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | None = None,
    timeout: timedelta | float | None = None,
) -> Any:
    """Register a task: a sync or async function run durably by ``ctx.schedule``.

    Args:
        name: the task's kind (defaults to the function name).
        retry_policy: how to retry failures (default: one attempt, no retry; pass
            ``RetryPolicy()`` for Flovyn's 3 attempts with backoff).
        timeout: longest time one attempt may run; then it fails with ``TaskTimeout``.
    """
    if isinstance(timeout, int | float):
        timeout = timedelta(seconds=timeout)
    if timeout is not None and timeout <= timedelta(0):
        raise InvalidInput(f"task timeout must be positive, got {timeout}")

    def register(f: Callable[..., Any]) -> TaskDefinition[Any]:
        sig = _inspect(f, "task")
        definition: TaskDefinition[Any] = TaskDefinition(
            name=_name_of(f, name),
            fn=f,
            retry_policy=retry_policy or _NO_RETRY,
            timeout=timeout,
            is_async=inspect.iscoroutinefunction(f),
            takes_ctx=sig.takes_ctx,
            takes_input=sig.takes_input,
            input_type=sig.input_type,
            return_type=sig.return_type,
        )
        registry.add_task(definition)
        return definition

    return register(fn) if fn is not None else register
