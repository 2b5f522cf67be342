"""Every error flovyn_nb raises, rooted at :class:`FlovynError`.

```
FlovynError
├── InvalidInput                 bad value or argument; nothing was changed
│   ├── UnstorableValue          a value code produced has no JSON form (NaN, a cycle, ...)
│   └── UnknownTask              no task registered under that name in this process
├── UnknownWorkflow              no run with that workflow id
│   └── UnknownWorkflowKind      no workflow registered under that name in this process
├── UnknownPromise               no such promise on that run
├── PromiseAlreadyResolved       the promise already has a value or an error
├── DuplicateWorkflowId          a run with that workflow id exists already
├── StoreError                   the store file is missing, foreign, newer or broken
│   └── StoreLocked              another process holds the file past lock_timeout
├── EngineError                  the engine is not running / used from the wrong thread
│   └── EngineStopped            the engine's loop stopped on its own; ``cause`` says why
├── DeterminismViolation         replayed code issued other commands than history holds
├── PromiseTimeout               a promise was not resolved before its timeout
├── SignalTimeout                no signal arrived before the timeout
├── PromiseRejected              a promise was rejected
├── TaskFailed                   a task failed after its last attempt
│   └── TaskTimeout              a task attempt exceeded its timeout
├── TaskCancelled                a task was cancelled before it finished
├── ChildWorkflowFailed          a child workflow failed or was cancelled
├── WorkflowFailed               a run ended FAILED (raised by handle.result())
└── WorkflowCancelled            a run was cancelled
```

Suspension and cancellation delivery inside the engine never use an ``Exception`` a user's
``except Exception:`` could swallow; ``WorkflowCancelled`` is raised *into* workflow code
on purpose, so the workflow can clean up.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ChildWorkflowFailed",
    "DeterminismViolation",
    "DuplicateWorkflowId",
    "EngineError",
    "EngineStopped",
    "FlovynError",
    "InvalidInput",
    "PromiseAlreadyResolved",
    "PromiseRejected",
    "PromiseTimeout",
    "SignalTimeout",
    "StoreError",
    "StoreLocked",
    "TaskCancelled",
    "TaskFailed",
    "TaskTimeout",
    "UnknownPromise",
    "UnknownTask",
    "UnknownWorkflow",
    "UnknownWorkflowKind",
    "UnstorableValue",
    "WorkflowCancelled",
    "WorkflowFailed",
]


class FlovynError(Exception):
    """Root of every error flovyn_nb raises."""

    @property
    def message(self) -> str:
        """The error's message (Flovyn's attribute; ``str(error)`` is the same text)."""
        return str(self.args[0]) if self.args else ""


class InvalidInput(FlovynError):
    """A value or argument was not acceptable; nothing was stored or changed."""


class UnstorableValue(InvalidInput):
    """A value a workflow or task produced (a result, a state value, ...) cannot be stored
    as JSON; the message names the value and what refused it. The step that produced it
    fails (a task attempt is retried per its policy) and nothing of it is stored."""

    def __init__(self, message: str, *, what: str = "") -> None:
        super().__init__(message)
        self.what = what


class UnknownWorkflow(FlovynError):
    """No run with that workflow id, or no workflow registered under that name."""

    def __init__(self, message: str, *, workflow_id: str | None = None) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class UnknownWorkflowKind(UnknownWorkflow):
    """No workflow is registered under that name in this process (yet): run the cell or
    import the module that defines it. A recovered run of that kind waits for it."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class UnknownTask(InvalidInput):
    """No task is registered under that name in this process (yet); a replayed run that
    schedules it waits until it is defined."""

    def __init__(self, message: str, *, name: str) -> None:
        super().__init__(message)
        self.name = name


class UnknownPromise(FlovynError):
    """The run has no promise of that name (and is not waiting for one)."""


class PromiseAlreadyResolved(FlovynError):
    """The promise was already resolved, rejected or timed out; its value stays."""

    def __init__(self, message: str, *, workflow_id: str, name: str, status: str) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.name = name
        self.status = status


class DuplicateWorkflowId(FlovynError):
    """A new run's workflow id is taken by another run in the store (raised by the store
    where it meets the unique constraint; starting a run catches it and hands back the
    existing run)."""

    def __init__(self, message: str, *, workflow_id: str | None = None) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id


class StoreError(FlovynError):
    """The store file cannot be used (missing, not a flovyn store, newer schema, I/O)."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StoreLocked(StoreError):
    """Another process held the store file for longer than ``lock_timeout``."""

    def __init__(self, message: str, *, path: str, holder_pid: int | None) -> None:
        super().__init__(message, path=path)
        self.holder_pid = holder_pid


class EngineError(FlovynError):
    """The engine is not running, already running, or was called from its own thread."""


class EngineStopped(EngineError):
    """The engine's loop stopped without being asked to (``cause`` is what stopped it);
    every call on it raises this until ``flovyn_nb.start()`` starts a new one."""

    def __init__(self, message: str, *, cause: str = "") -> None:
        super().__init__(message)
        self.cause = cause


class DeterminismViolation(FlovynError):
    """Replayed workflow code issued a command that does not match the recorded history."""

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str = "",
        step: int = 0,
        recorded: str = "",
        issued: str = "",
    ) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.step = step
        self.recorded = recorded
        self.issued = issued

    @property
    def details(self) -> str:
        """What did not match (Flovyn's name): the step, the recorded and the issued command."""
        return f"step {self.step}: recorded {self.recorded!r}, issued {self.issued!r}"


class PromiseTimeout(FlovynError):
    """A promise reached its timeout before anyone resolved it."""

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name

    @property
    def promise_name(self) -> str:
        """The promise's name (Flovyn's attribute name for ``name``)."""
        return self.name


class SignalTimeout(FlovynError):
    """``wait_for_signal`` reached its timeout before a signal arrived."""

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.name = name


class PromiseRejected(FlovynError):
    """A promise was rejected; ``reason`` is the text the rejecter gave."""

    def __init__(self, message: str, *, name: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.reason = reason

    @property
    def promise_name(self) -> str:
        """The promise's name (Flovyn's attribute name for ``name``)."""
        return self.name

    @property
    def rejection_reason(self) -> str:
        """The rejecter's text (Flovyn's attribute name for ``reason``)."""
        return self.reason


class TaskFailed(FlovynError):
    """A task failed on its last attempt.

    ``error_type``, ``error_message`` and ``traceback`` describe the task's own exception;
    ``retryable`` (Flovyn's attribute) is False: the error reaches the workflow only after
    the task's retry policy is spent.
    """

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        task: str = "",
        attempts: int = 0,
        error_type: str = "",
        error_message: str = "",
        traceback: str = "",
    ) -> None:
        super().__init__(message)
        self.task = task
        self.attempts = attempts
        self.error_type = error_type
        self.error_message = error_message
        self.traceback = traceback


class TaskTimeout(TaskFailed):
    """A task attempt ran longer than the task's ``timeout`` (``timeout_ms``, Flovyn's name)."""

    def __init__(self, message: str, *, timeout_ms: int = 0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timeout_ms = timeout_ms


class TaskCancelled(FlovynError):
    """A task was cancelled before it finished (its run was cancelled)."""

    def __init__(
        self, message: str = "task was cancelled", *, task: str = "", reason: str = ""
    ) -> None:
        super().__init__(message)
        self.task = task
        self.reason = reason


class ChildWorkflowFailed(FlovynError):
    """A child workflow ended FAILED or CANCELLED."""

    def __init__(self, message: str, *, child_workflow_id: str = "", cause: Any = None) -> None:
        super().__init__(message)
        self.child_workflow_id = child_workflow_id
        self.cause = cause


class WorkflowFailed(FlovynError):
    """The run ended FAILED. ``cause`` holds the error as recorded (type, message, traceback)."""

    def __init__(self, message: str, *, workflow_id: str = "", cause: Any = None) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.cause = cause


class WorkflowCancelled(FlovynError):
    """The run was cancelled (raised in the workflow at its pending wait, and by ``result()``)."""

    def __init__(
        self, message: str = "workflow was cancelled", *, workflow_id: str = "", reason: str = ""
    ) -> None:
        super().__init__(message)
        self.workflow_id = workflow_id
        self.reason = reason
