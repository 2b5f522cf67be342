"""The public API: start the engine, start runs, answer promises, query the store.

Functions that change a run work whether or not this process runs the engine: with an
engine they go through it (so a live run reacts at once); without one they write the
run's inbox in the store, and the owning process picks it up through the doorbell.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from flovyn_nb.client import retry
from flovyn_nb.client.keywords import MISSING, one, pick
from flovyn_nb.client.process import (
    change_feed,
    current_engine,
    running_engine,
    start,
    stop,
    store_for,
    store_location,
    store_target,
)
from flovyn_nb.client.process import current as _current
from flovyn_nb.client.process import engine_on as _engine_on
from flovyn_nb.client.process import inbox_write as _inbox_write
from flovyn_nb.client.retry import fork_run, retry_run
from flovyn_nb.client.streams import StreamItem, stream_item
from flovyn_nb.definitions import WorkflowDefinition, registry
from flovyn_nb.engine.engine import Activity, LiveRun
from flovyn_nb.errors import (
    EngineError,
    InvalidInput,
    UnknownWorkflow,
)
from flovyn_nb.feed import Callback, Change, Subscription, wait_without_engine
from flovyn_nb.handles import Door, HandleDisplay, WorkflowHandle, bind
from flovyn_nb.model import LogEntry, PromiseInfo, PromiseStatus, RunInfo, RunStatus
from flovyn_nb.runtime import RunSnapshot, Runtime
from flovyn_nb.store import (
    EventRow,
    LogRow,
    SendSignal,
    SettlePromise,
    Store,
    location_of,
)

if TYPE_CHECKING:
    import pandas

# Plain data handed to the layers above (panels, kernel, CLI, batch), re-exported so that
# they import nothing from the engine or the store.
__all__ = [
    "Activity", "Change", "EventRow", "LiveRun", "LogRow", "RunSnapshot", "Runtime",
    "StreamItem", "Subscription", "WorkflowHandle", "activity", "cancel_soon", "cancel_workflow",
    "current_engine", "discovered_store_location", "engine_now", "fork_run", "get_handle", "get_run", "is_live", "list_runs",
    "pending_promises", "query_runs", "RunPage", "RunQuery", "live_engine_ids", "unattended", "reject_promise", "resolve_promise", "resolve_promise_soon",
    "retry_run", "run_logs", "run_snapshot", "run_source_hashes", "run_streams", "set_handle_display", "signal_with_start_workflow", "signal_workflow",
    "sql", "start", "start_workflow", "stop", "store_for", "store_location", "watch",
    "ReplayCheck", "StepRecord", "check_replay", "replay_summary", "step_record",
    "migrate_store", "store_target",
    "WorkflowInfo", "list_workflows", "workflow_source", "queue", "QueueInfo", "queue_info",
    "QueueWait", "queue_wait", "queue_waits",
    "schedule", "ScheduleInfo", "list_schedules", "pause_schedule", "resume_schedule",
    "delete_schedule", "run_metrics", "RunMetrics", "StepDurations", "FailureRate", "DayCount",
]  # fmt: skip

_handle_display: HandleDisplay | None = None


def start_workflow(
    workflow: WorkflowDefinition[Any] | str,
    input: Any = None,
    *,
    workflow_id: str | None = None,
    id_reuse: str = "return",
    queue: str | None = None,
    store: str | os.PathLike[str] | None = None,
) -> WorkflowHandle:
    """Start a run. When a run already has this ``workflow_id``, ``id_reuse`` decides:
    ``"return"`` (default) hands it back (starting is idempotent), ``"retry_failed"``
    retries it first if it failed or was cancelled (see ``retry_run``), ``"reject"``
    raises DuplicateWorkflowId.

    With this process's engine and no ``queue``, the engine runs it at once. Else the run
    waits unowned in ``queue`` (default ``"default"``) for an engine that serves it and has
    the workflow; one not importable here is named by its kind, its input checked
    against the schema its engines recorded.

    Raises:
        InvalidInput: the input does not fit the workflow's input type, a bad queue name,
            or ``id_reuse`` is none of the three.
        DuplicateWorkflowId: the id is taken and ``id_reuse="reject"``.
        UnknownWorkflowKind: the workflow is neither defined here nor recorded.
    """
    retry.check_id_reuse(id_reuse)
    engine = _current()
    same_store = store is None or (
        engine is not None and location_of(store) == engine.store.location
    )
    if isinstance(workflow, WorkflowDefinition):
        definition: WorkflowDefinition[Any] | None = workflow
    elif isinstance(workflow, str):
        definition = registry.find_workflow(workflow)  # or recorded by another process
    else:
        definition = registry.workflow(workflow)  # Flovyn's class form
    if engine is not None and queue is None and same_store and definition is not None:
        started = engine.start_workflow(definition, input, workflow_id=workflow_id)
        handle = WorkflowHandle(started.workflow_id, started.execution_id, started.kind)
        return retry.reuse_existing(handle, definition, id_reuse) if started.existing else handle
    from flovyn_nb.client.enqueue import enqueue, queue_store

    target = queue_store(store_for, store, engine_here=engine is not None)
    queued = enqueue(
        target, definition or workflow, input, workflow_id=workflow_id, queue=queue or "default"
    )
    if engine is not None and same_store and queued.queue in engine.queues:
        engine.claim_soon()  # its own ring of the work bell does not count as a knock
    handle = WorkflowHandle(queued.workflow_id, queued.execution_id, queued.kind, target)
    if queued.existing and id_reuse != "return":
        return retry.reuse_existing(handle, definition, id_reuse)
    return handle


def signal_with_start_workflow(
    workflow: WorkflowDefinition[Any] | str,
    input: Any,
    signal_name: str,
    value: Any = MISSING,
    *,
    workflow_id: str | None = None,
    signal_value: Any = MISSING,
) -> WorkflowHandle:
    """Start the run unless one with ``workflow_id`` exists, then send it the signal (a
    later ``ctx.wait_for_signal(signal_name)`` in the run receives it).

    Raises:
        InvalidInput: the input does not fit the workflow's input type; nothing was sent.
        EngineError: no engine is running in this process.
    """
    value = pick("signal_with_start_workflow", "value", value, "signal_value", signal_value)
    handle = start_workflow(workflow, input, workflow_id=workflow_id)
    signal_workflow(handle.workflow_id, signal_name, None if value is MISSING else value)
    return handle


def get_handle(workflow_id: str, *, store: str | os.PathLike[str] | None = None) -> WorkflowHandle:
    run = get_run(workflow_id, events=False, store=store)
    return WorkflowHandle(
        run.workflow_id, run.execution_id, run.kind, None if store is None else store_for(store)
    )


def resolve_promise(
    workflow_id: str,
    name: str = MISSING,
    value: Any = None,
    *,
    promise_name: str = MISSING,
    store: str | os.PathLike[str] | None = None,
    resolved_by: str = "api",
    allow_early: bool = True,
) -> None:
    """Resolve the promise ``name`` (Flovyn: ``promise_name``) of run ``workflow_id``.

    Works from any process. A promise the workflow has not reached yet keeps the value
    until it does (``allow_early=False`` refuses that with ``UnknownPromise``).

    Raises:
        UnknownWorkflow: no such run.
        UnknownPromise: ``allow_early=False`` and the run has no such promise (yet).
        PromiseAlreadyResolved: it already has a value (which stays).
        InvalidInput: the value does not fit the promise's ``type_hint``; nothing changed.
    """
    _settle(
        workflow_id,
        one("resolve_promise", "name", name, "promise_name", promise_name),
        value,
        reject=False,
        reason="",
        store=store,
        resolved_by=resolved_by,
        allow_early=allow_early,
    )


def reject_promise(
    workflow_id: str,
    name: str = MISSING,
    reason: str = MISSING,
    *,
    promise_name: str = MISSING,
    error: str = MISSING,
    store: str | os.PathLike[str] | None = None,
    resolved_by: str = "api",
    allow_early: bool = True,
) -> None:
    """Reject the promise: the workflow's ``ctx.promise`` raises ``PromiseRejected``
    (Flovyn's spellings ``promise_name=`` and ``error=`` work too)."""
    reason = pick("reject_promise", "reason", reason, "error", error)
    _settle(
        workflow_id,
        one("reject_promise", "name", name, "promise_name", promise_name),
        None,
        reject=True,
        reason="" if reason is MISSING else reason,
        store=store,
        resolved_by=resolved_by,
        allow_early=allow_early,
    )


def _settle(
    workflow_id: str,
    name: str,
    value: Any,
    *,
    reject: bool,
    reason: str,
    store: Any,
    resolved_by: str,
    allow_early: bool,
) -> None:
    engine = _engine_on(store)
    if engine is not None:
        engine.resolve_promise(
            workflow_id,
            name,
            value,
            reject=reject,
            reason=reason,
            resolved_by=resolved_by,
            allow_early=allow_early,
        )
        return
    request = SettlePromise(
        workflow_id=workflow_id,
        name=name,
        status=PromiseStatus.REJECTED if reject else PromiseStatus.RESOLVED,
        value=value,
        reason=reason if reject else None,
        resolved_by=resolved_by,
        now=time.time,  # called inside the transaction: the deadline is judged by it
        validated=False,
        require_existing=not allow_early,
        keep_value=False,  # only the store needs it: no copy of a big value
    )
    _inbox_write(store_for(store), lambda target: target.settle_promise(request))


def signal_workflow(
    workflow_id: str = MISSING,
    name: str = MISSING,
    value: Any = None,
    *,
    workflow_execution_id: str = MISSING,
    signal_name: str = MISSING,
    store: str | os.PathLike[str] | None = None,
) -> None:
    """Send a signal; the run's next ``ctx.wait_for_signal(name)`` receives it (Flovyn's
    ``workflow_execution_id=``, a run's execution id, and ``signal_name=`` work too)."""
    name = one("signal_workflow", "name", name, "signal_name", signal_name)
    target = one(
        "signal_workflow",
        "workflow_id",
        workflow_id,
        "workflow_execution_id",
        workflow_execution_id,
    )
    if workflow_id is MISSING:  # Flovyn's execution id: find the run's workflow id
        workflow_id = get_run(target, events=False, store=store).workflow_id
    engine = _engine_on(store)
    if engine is not None:
        engine.signal(workflow_id, name, value)
        return
    request = SendSignal(workflow_id=workflow_id, name=name, value=value, now=time.time())
    _inbox_write(store_for(store), lambda target: target.send_signal(request))


def cancel_workflow(
    workflow_id: str, reason: str = "", *, store: str | os.PathLike[str] | None = None
) -> None:
    """Request cancellation of a run (from any process); the workflow's waits raise
    ``WorkflowCancelled`` whose ``reason`` is ``reason``, and so does ``result()``."""
    engine = _engine_on(store)
    if engine is not None:
        engine.cancel(workflow_id, reason)
        return
    _inbox_write(store_for(store), lambda target: target.request_cancel(workflow_id, reason))


# -- queries -------------------------------------------------------------------------------


def get_run(
    workflow_id: str, *, events: bool = True, store: str | os.PathLike[str] | None = None
) -> RunInfo:
    """A run with its history.

    Raises:
        UnknownWorkflow: no run with that workflow id (or execution id).
    """
    run = store_for(store).get_run(workflow_id, with_events=events)
    if run is None:
        raise UnknownWorkflow(f"no run with workflow id {workflow_id!r}", workflow_id=workflow_id)
    return run


def _statuses(status: str | RunStatus | Iterable[str | RunStatus] | None) -> list[str]:
    if status is None:
        return []
    items = [status] if isinstance(status, str | RunStatus) else list(status)
    result = []
    for item in items:
        try:
            result.append(RunStatus(str(item).upper()).value)
        except ValueError:
            raise InvalidInput(
                f"unknown status {item!r}; use one of {', '.join(s.value for s in RunStatus)}"
            ) from None
    return result


def list_runs(
    *,
    status: str | RunStatus | Iterable[str | RunStatus] | None = None,
    kind: str | None = None,
    limit: int | None = None,
    store: str | os.PathLike[str] | None = None,
) -> list[RunInfo]:
    """Runs, newest first, optionally filtered by status and workflow kind (no events)."""
    statuses = _statuses(status)
    return store_for(store).list_runs(statuses=statuses, kind=kind, limit=limit)


def run_source_hashes(
    kind: str,
    *,
    status: str | RunStatus | Iterable[str | RunStatus] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> dict[str, str | None]:
    """Workflow id -> hash of the source each run of ``kind`` started with, newest first."""
    statuses = _statuses(status)
    return dict(store_for(store).source_hashes(kind=kind, statuses=statuses))


def pending_promises(
    workflow_id: str | None = None, *, store: str | os.PathLike[str] | None = None
) -> list[PromiseInfo]:
    """Promises waiting for a value, with their timeout deadlines and JSON schemas."""
    return store_for(store).promises(workflow_id=workflow_id)


def run_logs(workflow_id: str, *, store: str | os.PathLike[str] | None = None) -> list[LogEntry]:
    """The captured log lines of a run, in order."""
    run = get_run(workflow_id, events=False, store=store)
    return store_for(store).logs(run.execution_id)


def run_streams(
    workflow_id: str, *, since: int = 0, store: str | os.PathLike[str] | None = None
) -> list[StreamItem]:
    """The stream items of a run's tasks (``ctx.stream_*``) in order, from the ``since``-th
    on (0-based: pass how many were read to get only newer ones).

    Raises:
        UnknownWorkflow: no such run.
    """
    items = [i for e in run_logs(workflow_id, store=store) if (i := stream_item(e)) is not None]
    return items[max(since, 0) :]


def sql(
    query: str,
    params: list[Any] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    write: bool = False,
) -> pandas.DataFrame:
    """Run SQL over the store's tables (``workflow_executions``, ``events``, ``tasks``,
    ``timers``, ``promises``, ``signals``, ``logs``, ``engines``) into a DataFrame.

    Queries are read-only: one SELECT (``WITH``, ``DESCRIBE``, ``SHOW`` …),
    run in a read-only transaction. ``write=True`` runs the statements in one committed
    transaction instead, for deliberate maintenance of the record.

    Raises:
        InvalidInput: bad SQL, or a statement that is not read-only without ``write``;
            nothing was changed.
    """
    return store_for(store).sql(query, params, write=write)


# -- for the layers above: panels, kernel, CLI, batch (thread-safe, plain data) ------------


def set_handle_display(display: HandleDisplay | None) -> None:
    """Set how a :class:`WorkflowHandle` shows in a notebook: ``display(handle, include,
    exclude)`` returns its mime bundle (the widgets register their run panel here)."""
    global _handle_display
    _handle_display = display


def is_live(execution_id: str, *, store: str | os.PathLike[str] | None = None) -> bool:
    """Whether this process's engine (running on ``store``) executes the run now; asked
    on the engine loop, where its runs live."""
    engine = _engine_on(store)
    if engine is None:
        return False
    try:
        activity = engine.activity()
    except EngineError:  # it stopped meanwhile: nothing runs here any more
        return False
    return any(run.execution_id == execution_id for run in activity.runs)


def activity() -> Activity | None:
    """The runs this process's engine holds and what they do (None: no engine), read on
    the engine loop in one step."""
    engine = _current()
    return None if engine is None else engine.activity()


def engine_now() -> float:
    """The time on the engine's clock (a fake clock in tests), else the real time."""
    engine = _current()
    return time.time() if engine is None else engine.clock.now()


def run_snapshot(
    workflow_id: str,
    *,
    store: str | os.PathLike[str] | None = None,
    logs_since: float | None = None,
) -> RunSnapshot:
    """A run (by workflow or execution id) with its events and log lines (those from
    ``logs_since``, a UNIX time, when given).

    Raises:
        UnknownWorkflow: no such run.
    """
    handle = store_for(store)
    info = handle.get_run(workflow_id, with_events=True)
    if info is None:
        raise UnknownWorkflow(f"no run with workflow id {workflow_id!r}", workflow_id=workflow_id)
    return RunSnapshot(info, handle.logs(info.execution_id, since_ts=logs_since))


def watch(
    callback: Callback, *, store: str | os.PathLike[str] | None = None, bell: bool = True
) -> Subscription:
    """Subscribe to the change feed of ``store``: ``callback(change)`` is called with a
    :class:`~flovyn_nb.feed.Change` for every item the engine of this process records
    there (on the engine loop: append and return, never block) and, with ``bell``,
    whenever another process committed to the store (on the feed's thread).

    Returns the subscription; ``close()`` it (or use it as a context manager).
    """
    return change_feed().watch(callback, store_location(store), bell=bell)


def resolve_promise_soon(
    workflow_id: str,
    name: str,
    value: Any = None,
    *,
    reject: bool = False,
    reason: str = "",
    store: str | os.PathLike[str] | None = None,
    resolved_by: str = "panel",
) -> Future[None] | None:
    """Like :func:`resolve_promise` (or reject) without blocking, for button handlers: the
    future holds the outcome. None when no engine of this process runs on ``store``."""
    engine = _engine_on(store)
    if engine is None:
        return None
    return engine.resolve_promise_soon(
        workflow_id, name, value, reject=reject, reason=reason, resolved_by=resolved_by
    )


def cancel_soon(
    workflow_id: str, reason: str = "", *, store: str | os.PathLike[str] | None = None
) -> Future[None] | None:
    """Like :func:`cancel_workflow` without blocking (None: no engine on ``store``)."""
    engine = _engine_on(store)
    return None if engine is None else engine.cancel_soon(workflow_id, reason)


def _wait_finished(
    execution_id: str, store: Store | None, timeout: float | None
) -> tuple[RunStatus, Any, Any]:
    engine = _current()
    if engine is not None:
        return engine.wait_finished(execution_id, timeout)
    return wait_without_engine(store or store_for(None), execution_id, timeout)


bind(
    Door(
        wait_finished=_wait_finished,
        get_run=lambda workflow_id, events: get_run(workflow_id, events=events),
        cancel=lambda workflow_id, reason: cancel_workflow(workflow_id, reason),
        signal=lambda workflow_id, name, value: signal_workflow(workflow_id, name, value),
        display=lambda: _handle_display,
    )
)

# Door functions kept in modules of their own (this one is near its size limit).
from flovyn_nb.client import reads as _reads

_reads.bind(
    _reads.Reads(
        get_run=get_run,
        list_runs=list_runs,
        logs=lambda execution_id, store: store_for(store).logs(execution_id),
    )
)
from flovyn_nb.client.debug import StepRecord, step_record
from flovyn_nb.client.replay_check import ReplayCheck, check_replay
from flovyn_nb.client.replay_check import summary as replay_summary

retry.bind(retry.Access(engine_on=_engine_on, store_for=store_for, inbox_write=_inbox_write))
from flovyn_nb.client import runpages as _runpages
from flovyn_nb.client.migrate import migrate_store
from flovyn_nb.client.runpages import RunPage, RunQuery, live_engine_ids, query_runs, unattended
from flovyn_nb.client.stores import discovered_store_location

_runpages.bind(store_for, _statuses)

from flovyn_nb.client.definitions import (
    WorkflowInfo,
    bind_store_lookup,
    list_workflows,
    workflow_source,
)
from flovyn_nb.client.queues import (
    QueueInfo,
    QueueWait,
    queue,
    queue_info,
    queue_wait,
    queue_waits,
)
from flovyn_nb.client.schedules import (
    ScheduleInfo,
    delete_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    schedule,
)

bind_store_lookup(lambda store: store_for(store, flush=False), running_engine)
from flovyn_nb.client.metrics import DayCount, FailureRate, RunMetrics, StepDurations, run_metrics
