"""The public API: start the engine, start runs, answer promises, query the store.

Functions that change a run work whether or not this process runs the engine: with an
engine they go through it (so a live run reacts at once); without one they write the
run's inbox in the store, and the owning process picks it up through the doorbell.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from flovyn_nb.definitions import WorkflowDefinition, registry
from flovyn_nb.engine.clock import Clock
from flovyn_nb.engine.engine import Activity, Engine, LiveRun
from flovyn_nb.errors import (
    EngineError,
    InvalidInput,
    UnknownWorkflow,
)
from flovyn_nb.feed import Callback, Change, Feed, Subscription, wait_without_engine
from flovyn_nb.handles import Door, HandleDisplay, WorkflowHandle, bind
from flovyn_nb.model import LogEntry, PromiseInfo, PromiseStatus, RunInfo, RunStatus
from flovyn_nb.runtime import RunSnapshot, Runtime
from flovyn_nb.store import (
    EventRow,
    LogRow,
    SendSignal,
    SettlePromise,
    Store,
    default_store_path,
    location_of,
    open_store,
)

if TYPE_CHECKING:
    import pandas

# Plain data handed to the layers above (panels, kernel, CLI, batch), re-exported so that
# they import nothing from the engine or the store.
__all__ = [
    "Activity", "Change", "EventRow", "LiveRun", "LogRow", "RunSnapshot", "Runtime",
    "Subscription", "WorkflowHandle", "WorkflowInfo", "activity", "cancel_soon", "cancel_workflow",
    "current_engine", "engine_now", "get_handle", "get_run", "is_live", "list_runs",
    "pending_promises", "reject_promise", "resolve_promise", "resolve_promise_soon",
    "run_logs", "run_snapshot", "run_source_hashes", "set_handle_display", "signal_with_start_workflow", "signal_workflow",
    "sql", "start", "start_workflow", "stop", "store_for", "store_location", "watch",
    "list_workflows", "workflow_source", "queue", "QueueInfo", "queue_info", "schedule",
    "ScheduleInfo", "list_schedules", "pause_schedule", "resume_schedule", "delete_schedule",
]  # fmt: skip

_lock = threading.Lock()
_engine: Engine | None = None
_runtime: Runtime | None = None
_feed: Feed | None = None  # the change feed, made on the first watch()
_stores: dict[str, Store] = {}
_handle_display: HandleDisplay | None = None


def start(
    store: str | os.PathLike[str] | None = None,
    *,
    clock: Clock | None = None,
    **options: Any,
) -> Runtime:
    """Start this process's engine on a store file (default: ``FLOVYN_NB_STORE`` or
    ``./.flovyn/flovyn.duckdb``) and resume the runs it can.

    Returns a :class:`~flovyn_nb.runtime.Runtime` (store location, ``running``, ``stop()``),
    which is also a context manager (``with fn.start(...):``).

    Raises:
        EngineError: an engine is already running in this process.
        StoreError / StoreLocked: the store cannot be used.
    """
    global _engine, _runtime
    with _lock:
        if _engine is not None and _engine.running:
            raise EngineError(
                f"an engine is already running on {_engine.store.location}; "
                "call flovyn_nb.stop() first"
            )
        engine = Engine(
            store if store is not None else default_store_path(), clock=clock, **options
        )
        engine.start()
        _engine = engine
        runtime = _runtime = Runtime(engine, _stop_engine)
    if _feed is not None:  # subscribers hear of its runs from now on
        _feed.nudge()
    return runtime


def stop() -> None:
    """Stop the engine; active runs stay in the store and resume with the next one."""
    global _engine, _runtime
    with _lock:
        engine, _engine, _runtime = _engine, None, None
    if engine is not None:
        engine.stop()


def _stop_engine(engine: Engine) -> None:
    global _engine, _runtime
    with _lock:
        if _engine is engine:
            _engine, _runtime = None, None
    engine.stop()


def current_engine() -> Runtime | None:
    """This process's running engine (as a :class:`~flovyn_nb.runtime.Runtime`), or None."""
    runtime = _runtime
    return runtime if runtime is not None and runtime.running else None


def running_engine() -> Engine | None:
    """The engine object itself, for tests of its internal mechanisms and the bench only:
    everything else goes through this module's functions and :class:`Runtime`."""
    return _current()


def _current() -> Engine | None:
    """The running engine; one whose loop died says so (EngineStopped) instead of
    passing for no engine at all."""
    engine = _engine
    if engine is not None and engine.failure is not None:
        raise engine.failure
    return engine if engine is not None and engine.running else None


def _require_engine() -> Engine:
    engine = _current()
    if engine is None:
        raise EngineError(
            "the flovyn engine is not running: call flovyn_nb.start(store=...) "
            "or %load_ext flovyn_nb first"
        )
    return engine


def store_for(store: str | os.PathLike[str] | None, *, flush: bool = True) -> Store:
    """The store to query: the engine's (flushed first unless ``flush=False``: the feed
    only watches its doorbell), or a (cached) handle on the given/default path."""
    engine = _current()
    if engine is not None and (store is None or location_of(store) == engine.store.location):
        if flush:
            engine.flush()
        return engine.store
    location = location_of(store if store is not None else default_store_path())
    with _lock:
        cached = _stores.get(location)
        if cached is None:
            cached = _stores[location] = open_store(location, create=False)
        return cached


def start_workflow(
    workflow: WorkflowDefinition[Any] | str,
    input: Any = None,
    *,
    workflow_id: str | None = None,
    queue: str | None = None,
    store: str | os.PathLike[str] | None = None,
) -> WorkflowHandle:
    """Start a run (or return the existing run with this ``workflow_id``: idempotent).

    With this process's engine and no ``queue``, the engine runs it at once. Else the run
    waits unowned in ``queue`` (default ``"default"``) for an engine that serves it and has
    the workflow; one not importable here is named by its kind, its input checked
    against the schema its engines recorded.

    Raises:
        InvalidInput: the input does not fit the workflow's input type; bad queue name.
        UnknownWorkflowKind: the workflow is neither defined here nor recorded.
    """
    engine = _current()
    same_store = store is None or (
        engine is not None and location_of(store) == engine.store.location
    )
    if engine is not None and queue is None and same_store:
        definition = (
            workflow if isinstance(workflow, WorkflowDefinition) else registry.workflow(workflow)
        )
        started = engine.start_workflow(definition, input, workflow_id=workflow_id)
        return WorkflowHandle(started.workflow_id, started.execution_id, started.kind)
    from flovyn_nb.client.enqueue import enqueue, queue_store

    target = queue_store(store_for, store, engine_here=engine is not None)
    queued = enqueue(target, workflow, input, workflow_id=workflow_id, queue=queue or "default")
    if engine is not None and same_store and queued.queue in engine.queues:
        engine.claim_soon()  # its own ring of the work bell does not count as a knock
    return WorkflowHandle(queued.workflow_id, queued.execution_id, queued.kind, target)


def signal_with_start_workflow(
    workflow: WorkflowDefinition[Any] | str,
    input: Any,
    signal_name: str,
    value: Any = None,
    *,
    workflow_id: str | None = None,
) -> WorkflowHandle:
    """Start the run unless one with ``workflow_id`` exists, then send it the signal (a
    later ``ctx.wait_for_signal(signal_name)`` in the run receives it).

    Raises:
        InvalidInput: the input does not fit the workflow's input type; nothing was sent.
        EngineError: no engine is running in this process.
    """
    handle = start_workflow(workflow, input, workflow_id=workflow_id)
    signal_workflow(handle.workflow_id, signal_name, value)
    return handle


def get_handle(workflow_id: str, *, store: str | os.PathLike[str] | None = None) -> WorkflowHandle:
    run = get_run(workflow_id, events=False, store=store)
    return WorkflowHandle(
        run.workflow_id, run.execution_id, run.kind, None if store is None else store_for(store)
    )


def resolve_promise(
    workflow_id: str,
    name: str,
    value: Any = None,
    *,
    store: str | os.PathLike[str] | None = None,
    resolved_by: str = "api",
    allow_early: bool = True,
) -> None:
    """Resolve the promise ``name`` of run ``workflow_id`` with ``value``.

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
        name,
        value,
        reject=False,
        reason="",
        store=store,
        resolved_by=resolved_by,
        allow_early=allow_early,
    )


def reject_promise(
    workflow_id: str,
    name: str,
    reason: str = "",
    *,
    store: str | os.PathLike[str] | None = None,
    resolved_by: str = "api",
    allow_early: bool = True,
) -> None:
    """Reject the promise: the workflow's ``ctx.promise`` raises ``PromiseRejected``."""
    _settle(
        workflow_id,
        name,
        None,
        reject=True,
        reason=reason,
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
    workflow_id: str, name: str, value: Any = None, *, store: str | os.PathLike[str] | None = None
) -> None:
    """Send a signal; the run's next ``ctx.wait_for_signal(name)`` receives it."""
    engine = _engine_on(store)
    if engine is not None:
        engine.signal(workflow_id, name, value)
        return
    request = SendSignal(workflow_id=workflow_id, name=name, value=value, now=time.time())
    _inbox_write(store_for(store), lambda target: target.send_signal(request))


def cancel_workflow(workflow_id: str, *, store: str | os.PathLike[str] | None = None) -> None:
    """Request cancellation of a run (from any process)."""
    engine = _engine_on(store)
    if engine is not None:
        engine.cancel(workflow_id)
        return
    _inbox_write(store_for(store), lambda target: target.request_cancel(workflow_id))


def _engine_on(store: str | os.PathLike[str] | None) -> Engine | None:
    """This process's engine if it runs on ``store``: inbox writes then go through it (it
    delivers them at once, and its own doorbell rings do not wake it)."""
    engine = _current()
    if engine is not None and (store is None or location_of(store) == engine.store.location):
        return engine
    return None


def _inbox_write(store: Store, write: Callable[[Store], Any]) -> None:
    """Write into a run's inbox and let go of the store at once: the run's owner (another
    process) is about to open it to pick the change up."""
    try:
        write(store)
    finally:
        engine = _engine
        if engine is None or not engine.running or engine.store is not store:
            store.release()


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


def store_location(store: str | os.PathLike[str] | None = None) -> str:
    """The location of the store a query with ``store=`` reads: the given one, else the
    running engine's, else the default store (by canonical path)."""
    if store is not None:
        return location_of(store)
    engine = _current()
    if engine is not None:
        return engine.store.location
    return location_of(default_store_path())


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
    global _feed
    with _lock:
        if _feed is None:  # its thread asks for the engine without raising, never flushes
            running = lambda: _engine if _engine and _engine.running else None
            _feed = Feed(running, lambda location: store_for(location, flush=False))
            atexit.register(_feed.stop)  # after the store's exit hook, so it runs first
        feed = _feed
    return feed.watch(callback, store_location(store), bell=bell)


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
    workflow_id: str, *, store: str | os.PathLike[str] | None = None
) -> Future[None] | None:
    """Like :func:`cancel_workflow` without blocking (None: no engine on ``store``)."""
    engine = _engine_on(store)
    return None if engine is None else engine.cancel_soon(workflow_id)


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
        cancel=lambda workflow_id: cancel_workflow(workflow_id),
        signal=lambda workflow_id, name, value: signal_workflow(workflow_id, name, value),
        display=lambda: _handle_display,
    )
)

# Door functions of other topics (their own modules; imported last: they use this one).
from flovyn_nb.client.definitions import (
    WorkflowInfo,
    bind_store_lookup,
    list_workflows,
    workflow_source,
)
from flovyn_nb.client.queues import QueueInfo, queue, queue_info
from flovyn_nb.client.schedules import (
    ScheduleInfo,
    delete_schedule,
    list_schedules,
    pause_schedule,
    resume_schedule,
    schedule,
)

bind_store_lookup(lambda store: store_for(store, flush=False), running_engine)
