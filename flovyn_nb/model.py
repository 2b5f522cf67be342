"""Pydantic models at the edges: event payloads, and what queries return.

Event payloads are camelCase JSON (Flovyn's wire names). ``PAYLOADS`` maps each event
type to the model that describes its payload; the engine builds payloads through these
models, and tests validate whole histories against them.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass

JSON = Any
"""A JSON value: dict, list, str, int, float, bool or None."""


class RunStatus(StrEnum):
    """Where a run stands; COMPLETED, FAILED and CANCELLED are final (``is_terminal``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """Whether the run ended (nothing will change it any more)."""
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)


ACTIVE_STATUSES = (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.WAITING)


class PromiseStatus(StrEnum):
    """Where a promise stands: PENDING until resolved, rejected or timed out (once only)."""

    PENDING = "PENDING"
    RESOLVED = "RESOLVED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"


class EventType(StrEnum):
    """The type of a recorded event (Flovyn's names); its payload model is beside it."""

    WORKFLOW_STARTED = "WORKFLOW_STARTED"
    WORKFLOW_COMPLETED = "WORKFLOW_COMPLETED"
    WORKFLOW_EXECUTION_FAILED = "WORKFLOW_EXECUTION_FAILED"
    CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
    WORKFLOW_CANCELLED = "WORKFLOW_CANCELLED"
    TASK_SCHEDULED = "TASK_SCHEDULED"
    TASK_STARTED = "TASK_STARTED"
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_FAILED = "TASK_FAILED"
    TASK_RETRY_SCHEDULED = "TASK_RETRY_SCHEDULED"
    TASK_CANCELLED = "TASK_CANCELLED"
    TIMER_STARTED = "TIMER_STARTED"
    TIMER_FIRED = "TIMER_FIRED"
    TIMER_CANCELLED = "TIMER_CANCELLED"
    PROMISE_CREATED = "PROMISE_CREATED"
    PROMISE_RESOLVED = "PROMISE_RESOLVED"
    PROMISE_REJECTED = "PROMISE_REJECTED"
    PROMISE_TIMEOUT = "PROMISE_TIMEOUT"
    SIGNAL_RECEIVED = "SIGNAL_RECEIVED"
    CHILD_WORKFLOW_INITIATED = "CHILD_WORKFLOW_INITIATED"
    CHILD_WORKFLOW_COMPLETED = "CHILD_WORKFLOW_COMPLETED"
    CHILD_WORKFLOW_FAILED = "CHILD_WORKFLOW_FAILED"
    OPERATION_COMPLETED = "OPERATION_COMPLETED"
    STATE_SET = "STATE_SET"
    STATE_CLEARED = "STATE_CLEARED"
    PATCH_MARKER = "PATCH_MARKER"
    WORKFLOW_RETRIED = "WORKFLOW_RETRIED"


class _Payload(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def dump(self) -> dict[str, JSON]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class ErrorInfo(_Payload):
    """An exception as recorded: its type name, message and traceback text."""

    type: str
    message: str
    traceback: str = ""


class WorkflowStarted(_Payload):
    workflow_id: str
    kind: str
    input: JSON = None
    parent_execution_id: str | None = None
    source_hash: str | None = None
    # A fork: the run it was forked from (workflow id) and the 1-based step it re-ran from;
    # ``seedFrom`` is the origin's execution id, so ctx.random() replays the same values.
    forked_from: str | None = None
    from_step: int | None = None
    seed_from: str | None = None


class WorkflowRetried(_Payload):
    """A new attempt of the same run: the events from ``fromSeq`` up to this marker are
    superseded (but the outcomes of earlier steps that completed meanwhile), the steps
    from ``fromStep`` on run again with the code registered now."""

    attempt: int
    from_seq: int
    from_step: int | None = None
    reason: str = ""
    source_hash: str | None = None


class WorkflowCompleted(_Payload):
    output: JSON = None


class WorkflowExecutionFailed(_Payload):
    error: ErrorInfo


class CancellationRequested(_Payload):
    reason: str = ""


class WorkflowCancelledPayload(_Payload):
    output: JSON = None


class TaskScheduled(_Payload):
    task_execution_id: str
    task_kind: str
    input: JSON = None
    max_attempts: int = 1
    # The attempt timeout in force (the definition's or this call's override), for the record.
    timeout_seconds: float | None = None
    # @task(cache=True / cache_key=...): what a later run's identical step is found by.
    source_hash: str | None = None
    input_hash: str | None = None
    # Set when the task went to the store's task queue for an engine serving this queue
    # (``ctx.schedule(..., queue=)`` with a queue the run's engine does not serve): its
    # outcome comes from that engine; absent: it runs in the run's own engine.
    queue: str | None = None


class TaskStarted(_Payload):
    task_execution_id: str
    attempt: int
    deadline: datetime | None = None


class CachedFrom(_Payload):
    """Where a reused step's output was recorded (``@task(cache=True)``)."""

    workflow_id: str
    task_execution_id: str


class TaskCompleted(_Payload):
    task_execution_id: str
    attempt: int
    output: JSON = None
    # Set when the output was reused from an identical completed step: nothing ran.
    cached_from: CachedFrom | None = None


class TaskFailedPayload(_Payload):
    task_execution_id: str
    attempt: int
    error: ErrorInfo
    timed_out: bool = False


class TaskRetryScheduled(_Payload):
    task_execution_id: str
    attempt: int
    next_attempt_at: datetime
    error: ErrorInfo
    timed_out: bool = False


class TaskCancelled(_Payload):
    task_execution_id: str


class TimerStarted(_Payload):
    timer_id: str
    fire_at: datetime


class TimerFired(_Payload):
    timer_id: str


class TimerCancelled(_Payload):
    timer_id: str


class PromiseCreated(_Payload):
    promise_id: str
    promise_name: str
    timeout_at: datetime | None = None
    schema_: JSON = Field(default=None, alias="schema")


class PromiseResolved(_Payload):
    promise_id: str
    promise_name: str
    value: JSON = None
    resolved_by: str | None = None


class PromiseRejectedPayload(_Payload):
    promise_id: str
    promise_name: str
    error: str
    resolved_by: str | None = None


class PromiseTimeoutPayload(_Payload):
    promise_id: str
    promise_name: str


class SignalReceived(_Payload):
    signal_id: str
    signal_name: str
    value: JSON = None


class ChildWorkflowInitiated(_Payload):
    child_execution_id: str
    child_workflow_id: str
    kind: str
    input: JSON = None
    queue: str | None = None  # the child run's queue (absent in histories before v9)


class ChildWorkflowCompleted(_Payload):
    child_execution_id: str
    output: JSON = None


class ChildWorkflowFailedPayload(_Payload):
    child_execution_id: str
    error: ErrorInfo
    cancelled: bool = False


class OperationCompleted(_Payload):
    operation_name: str
    result: JSON = None


class PatchMarker(_Payload):
    """``ctx.patched(patch_id)`` took the new branch in this run (see ``WorkflowContext.patched``)."""

    patch_id: str


class StateSet(_Payload):
    key: str
    value: JSON = None


class StateCleared(_Payload):
    key: str


PAYLOADS: dict[EventType, type[_Payload]] = {
    EventType.WORKFLOW_STARTED: WorkflowStarted,
    EventType.WORKFLOW_COMPLETED: WorkflowCompleted,
    EventType.WORKFLOW_EXECUTION_FAILED: WorkflowExecutionFailed,
    EventType.CANCELLATION_REQUESTED: CancellationRequested,
    EventType.WORKFLOW_CANCELLED: WorkflowCancelledPayload,
    EventType.TASK_SCHEDULED: TaskScheduled,
    EventType.TASK_STARTED: TaskStarted,
    EventType.TASK_COMPLETED: TaskCompleted,
    EventType.TASK_FAILED: TaskFailedPayload,
    EventType.TASK_RETRY_SCHEDULED: TaskRetryScheduled,
    EventType.TASK_CANCELLED: TaskCancelled,
    EventType.TIMER_STARTED: TimerStarted,
    EventType.TIMER_FIRED: TimerFired,
    EventType.TIMER_CANCELLED: TimerCancelled,
    EventType.PROMISE_CREATED: PromiseCreated,
    EventType.PROMISE_RESOLVED: PromiseResolved,
    EventType.PROMISE_REJECTED: PromiseRejectedPayload,
    EventType.PROMISE_TIMEOUT: PromiseTimeoutPayload,
    EventType.SIGNAL_RECEIVED: SignalReceived,
    EventType.CHILD_WORKFLOW_INITIATED: ChildWorkflowInitiated,
    EventType.CHILD_WORKFLOW_COMPLETED: ChildWorkflowCompleted,
    EventType.CHILD_WORKFLOW_FAILED: ChildWorkflowFailedPayload,
    EventType.OPERATION_COMPLETED: OperationCompleted,
    EventType.STATE_SET: StateSet,
    EventType.STATE_CLEARED: StateCleared,
    EventType.PATCH_MARKER: PatchMarker,
    EventType.WORKFLOW_RETRIED: WorkflowRetried,
}


class EventInfo(BaseModel):
    """One event of a run's history."""

    model_config = ConfigDict(frozen=True)

    seq: int
    type: EventType
    payload: dict[str, JSON]
    ts: datetime


class RunInfo(BaseModel):
    """A run as stored: what ``fn.get_run`` and ``fn.list_runs`` return."""

    model_config = ConfigDict(frozen=True)

    workflow_id: str
    execution_id: str
    kind: str
    status: RunStatus
    input: JSON = None
    output: JSON = None
    error: ErrorInfo | None = None
    parent_id: str | None = None
    owner: str | None = None
    created_at: datetime
    updated_at: datetime
    events: list[EventInfo] = Field(default_factory=list)
    queue: str = "default"  # the queue the run waits in for an engine (see fn.queue)

    @property
    def cancel_reason(self) -> str:
        """Why cancellation was requested ("" if it was not, or read without events)."""
        for event in reversed(self.events):
            if event.type is EventType.CANCELLATION_REQUESTED:
                return str(event.payload.get("reason") or "")
        return ""


@dataclass(frozen=True)
class PromiseInfo:
    """A promise of a run; ``schema`` is the JSON schema of its ``type_hint`` (or None).

    A pydantic dataclass rather than a model so that the field can be called ``schema``.
    """

    workflow_id: str
    execution_id: str
    promise_id: str
    name: str
    status: PromiseStatus
    created_at: datetime
    timeout_at: datetime | None = None
    schema: JSON = None
    value: JSON = None
    error: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None


class LogEntry(BaseModel):
    """One captured log line of a run (``task_execution_id`` is None for workflow code)."""

    model_config = ConfigDict(frozen=True)

    execution_id: str
    task_execution_id: str | None
    ts: datetime
    stream: str
    level: str
    message: str
