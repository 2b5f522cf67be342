"""The engine: one per process, a daemon thread running an anyio loop.

This module owns the thread boundary. Callers in other threads (a notebook cell, a test,
the CLI) go through :meth:`Engine._call`, which hands the work to the loop (one hop, see
``_soon``) and refuses, rather than deadlocks, when called from the loop itself.

The engine runs its loop in a thread of its own, so it knows when the loop ends. One that
ends without ``stop()`` (it should not: user code's failures, ``KeyboardInterrupt`` and
``SystemExit`` included, are their step's, see ``faults``) is reported: ``running`` turns
False, ``failure`` says why, and every call raises that :class:`EngineStopped`.

Services on the loop: the group-commit writer, the deadline queue, the inbox (deliveries
of promises, signals and cancellations), the doorbell watcher and the heartbeat, which
also claims runs whose owner died. All but the writer start over after an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.from_thread
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal

from flovyn_nb import serde
from flovyn_nb.definitions import Registry, WorkflowDefinition, registry
from flovyn_nb.engine import logcapture, ownership, tuning
from flovyn_nb.engine.clock import Clock, SystemClock
from flovyn_nb.engine.deadlines import DeadlineQueue
from flovyn_nb.engine.faults import describe, is_code_failure, storable
from flovyn_nb.engine.ownership import pid_alive
from flovyn_nb.engine.run import Run
from flovyn_nb.engine.tasks import TaskRunner
from flovyn_nb.engine.waits import PromiseWait, Wait
from flovyn_nb.engine.writer import Write, Writer
from flovyn_nb.errors import (
    DuplicateWorkflowId,
    EngineError,
    EngineStopped,
    InvalidInput,
    StoreError,
    StoreLocked,
    UnknownWorkflow,
)
from flovyn_nb.history.replay import History, Recorded
from flovyn_nb.model import EventType, PromiseStatus, RunStatus
from flovyn_nb.store import (
    Claimed,
    DoorbellWatcher,
    EngineRow,
    EventRow,
    Heartbeat,
    LogRow,
    NewRun,
    PromiseRow,
    ReleaseRun,
    RequestCancel,
    RunUpdate,
    SendSignal,
    SettlePromise,
    Store,
    TimeOutPromises,
    open_store,
)

T = TypeVar("T")
log = logging.getLogger("flovyn_nb")
log.addHandler(logging.NullHandler())

Listener = Callable[[str, str, Any], None]  # (what, execution_id, data), called on the loop


@dataclass(frozen=True)
class Started:
    execution_id: str
    workflow_id: str
    kind: str
    existing: bool


@dataclass(frozen=True)
class LiveRun:
    """A run this engine holds, as seen from its loop (see :meth:`Engine.activity`)."""

    execution_id: str
    workflow_id: str
    kind: str
    computing: bool  # its code runs (or is about to): it will record something by itself
    doing: str  # "running" or "waiting on ..."


@dataclass(frozen=True)
class Activity:
    runs: list[LiveRun]
    task_attempts: int  # task attempts running now
    seen: tuple[str, ...] = ()  # every run this engine started, was handed back or adopted


class Engine:
    """Executes workflows durably on one store file.

    Args:
        store: path of the DuckDB store (created when missing).
        clock: time source (``flovyn_nb.testing.FakeClock`` in tests).
        max_concurrent_tasks: task attempts running at once (sync ones use a thread each).
        lock_timeout: how long to wait for another process holding the store.
        idle_release: release the store file after this many idle seconds.
        linger: how long a write may wait to share a commit with others.
        poll_interval: how often the doorbell is checked (a ``stat``, not a query).
        heartbeat_interval: how often the heartbeat is written and dead owners looked for.
        stale_after: heartbeat age after which an engine on another host counts as dead.
        tune_gc: while running, keep the garbage collector off the objects that existed
            when the engine started and make full collections (which pause every thread)
            ten times rarer.
        switch_interval: while running, the longest the GIL is held against a thread that
            wants it back (``sys.setswitchinterval``; None leaves it): DuckDB gives it up
            within every statement.
    """

    def __init__(
        self,
        store: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        max_concurrent_tasks: int = 32,
        lock_timeout: float | None = None,
        idle_release: float = 0.1,
        linger: float = 0.02,
        poll_interval: float = 0.02,
        heartbeat_interval: float = 5.0,
        stale_after: float = 30.0,
        tune_gc: bool = True,
        switch_interval: float | None = 0.0005,
        registry_: Registry = registry,
    ) -> None:
        if max_concurrent_tasks < 1:
            raise InvalidInput("max_concurrent_tasks must be at least 1")
        self.id = str(uuid.uuid4())
        self.store: Store = open_store(store, lock_timeout=lock_timeout, idle_release=idle_release)
        self.clock: Clock = clock or SystemClock()
        self.registry = registry_
        self.rng = random.Random()
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self._max_tasks = max_concurrent_tasks
        self._linger = linger
        self._tune_gc = tune_gc
        self._gc_tuned = False
        self._switch_interval = switch_interval
        self._switched = False
        self.runs: dict[str, Run] = {}
        # every run this engine started, was handed back by an idempotent start, or adopted
        self.seen_runs: dict[str, None] = {}
        self._by_workflow_id: dict[str, str] = {}
        self._listeners: list[Listener] = []
        self._finished = threading.Lock()  # guards the two below
        self._final: dict[str, tuple[RunStatus, Any, Any]] = {}  # recent ends, for handles
        # threads blocked in wait_finished, by run: each is woken when its run ends (not
        # at every run's end: a thread waking steals the loop's GIL)
        self._finish_waiters: dict[str, set[threading.Event]] = {}
        self._dirty: set[str] = set()
        # Commits by other processes seen so far (doorbell rings); see promise_timed_out.
        self.bell_gen = 0
        self._bell_watcher: DoorbellWatcher | None = None
        self._bell_seen_in = 0  # the lease tenure in which the bell was last looked at
        # in-process resolves in flight: (workflow id, promise name) -> how many
        self._settling: Counter[tuple[str, str]] = Counter()
        self._peers: dict[str, int] = {}  # other engines on this host: id -> pid
        self._portal: BlockingPortal | None = None
        self._host: threading.Thread | None = None  # the thread the loop runs in
        self._lifecycle = threading.Lock()  # guards start/teardown (the loop may die any time)
        self._stopping = False
        # calls from other threads not answered yet: failed if the loop dies under them
        self._calls: set[Future[Any]] = set()
        self._calls_lock = threading.Lock()
        self.failure: EngineStopped | None = None  # why the loop stopped on its own, if it did
        self._loop_thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.errors: list[str] = []  # internal errors, kept for inspection, never printed

    # -- lifecycle (caller threads) ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._portal is not None

    def start(self) -> Engine:
        if self._portal is not None:
            raise EngineError("this engine is already running")
        self.failure = None
        self._stopping = False
        logcapture.install()
        started: Future[BlockingPortal] = Future()
        self._host = threading.Thread(
            target=self._host_thread, args=(started,), name="flovyn-engine", daemon=True
        )
        try:
            self._host.start()
            started.result()  # _host_loop has set self._portal
        except BaseException:
            self._teardown()
            raise
        with self._lifecycle:
            if self._host is None:  # it died already: _died said why
                raise self._not_running()
            self._unsubscribe = self.registry.subscribe(
                self._on_registered, tasks=self._on_registered
            )
            if self._tune_gc:
                tuning.gc_tune()
                self._gc_tuned = True
            if self._switch_interval is not None:
                tuning.shorten_switch_interval(self._switch_interval)
                self._switched = True
        return self

    def stop(self) -> None:
        """Stop executing; active runs stay in the store and resume in the next engine."""
        portal = self._portal
        if portal is None:
            return
        if self._in_loop():
            raise EngineError("the engine cannot be stopped from inside a workflow or task")
        self._stopping = True
        with self._lifecycle:  # no new recoveries from registrations while stopping
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        with contextlib.suppress(Exception):
            portal.call(self._shutdown)
        self._teardown()

    def _teardown(self) -> None:
        """Let go of everything the engine holds (once; from any thread, the loop's too)."""
        with self._lifecycle:
            self._portal = None
            host, self._host = self._host, None
            unsubscribe, self._unsubscribe = self._unsubscribe, None
            gc_tuned, self._gc_tuned = self._gc_tuned, False
            switched, self._switched = self._switched, False
        if host is None:
            return  # torn down already
        if unsubscribe is not None:
            unsubscribe()
        if gc_tuned:
            tuning.gc_untune()
        if switched:
            tuning.restore_switch_interval()
        if host is not threading.current_thread() and host.ident is not None:
            host.join()
        tasks = getattr(self, "tasks", None)
        if tasks is not None:
            tasks.close()
        logcapture.uninstall()
        self.store.close()
        self._wake_finish_waiters(None)

    # -- the thread ----------------------------------------------------------------------------

    def _host_thread(self, started: Future[BlockingPortal]) -> None:
        """The engine's thread: runs the loop until stop(), or until it dies, and says so."""
        cause: BaseException | None = None
        try:
            anyio.run(self._host_loop, started)
        except BaseException as exc:
            cause = exc
        if not started.done():
            started.set_exception(cause or EngineError("the engine's loop ended while starting"))
        elif not self._stopping:
            self._died(cause)

    async def _host_loop(self, started: Future[BlockingPortal]) -> None:
        async with BlockingPortal() as portal:

            def on_started() -> None:
                self._portal = portal
                started.set_result(portal)

            try:
                await self._main(task_status=_Started(on_started))
            except BaseException as exc:
                if started.done():
                    raise
                started.set_exception(exc)
                return
            # Stopped: calls that came in through the portal meanwhile have nobody left
            # to serve them (the writer is gone).
            await portal.stop(cancel_remaining=True)

    def _died(self, cause: BaseException | None) -> None:
        """The loop ended without stop(): record why, let go of the store, and fail every
        call, now and later, with one clear error."""
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]  # a task group's wrapping says nothing
        why = "its loop ended" if cause is None else f"{type(cause).__name__}: {describe(cause)}"
        self.failure = EngineStopped(
            f"the flovyn engine stopped unexpectedly ({why}); its runs stay in the store: "
            "start a new engine with flovyn_nb.start() to resume them",
            cause=why,
        )
        self._internal_error(f"the engine's loop stopped: {cause!r}")
        self._teardown()
        with self._calls_lock:
            calls, self._calls = self._calls, set()
        for future in calls:
            with contextlib.suppress(Exception):  # answered meanwhile
                future.set_exception(self.failure)

    def _not_running(self) -> EngineError:
        if self.failure is not None:
            return self.failure
        return EngineError("the flovyn engine is not running; call flovyn_nb.start() first")

    def __enter__(self) -> Engine:  # noqa: PYI034
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ------------------------------------------------------------------------

    async def _main(self, *, task_status: _Started) -> None:
        self._loop_thread = threading.current_thread()
        self.writer = Writer(self.store, linger=self._linger)
        self.writer.on_blocked = self._store_blocked
        self.deadlines = DeadlineQueue(self.clock, on_warm=self._warm_store)
        self.tasks = TaskRunner(self, max_concurrent_tasks=self._max_tasks)
        self.workflow_threads = anyio.CapacityLimiter(10_000)
        self._inbox_event = anyio.Event()
        self._timeouts_event = anyio.Event()
        self._due_timeouts: list[tuple[Run, str]] = []
        self._bell_watcher = self.store.doorbell.watcher()
        self.clock.attach(self._idle)
        self._stop_event = anyio.Event()
        now = self.clock.now()
        await anyio.to_thread.run_sync(
            functools.partial(
                self.store.register_engine,
                self.id,
                pid=os.getpid(),
                host=ownership.HOST,
                proc_start=ownership.MY_START,
                now=now,
            )
        )
        async with anyio.create_task_group() as tg:
            self._tg: TaskGroup = tg
            # Calls from other threads are taken from here on (see _soon).
            self._loop = asyncio.get_running_loop()  # anyio's asyncio backend
            tg.start_soon(self.writer.run)  # keeps its own state: an error in it is fatal
            for service in (
                self.deadlines.run,
                self._inbox_loop,
                self._timeouts_loop,
                self._watch_bell,
                self._heartbeat_loop,
            ):
                tg.start_soon(self._keep, service)
            await self._recover()
            task_status.started()
            await self._stop_event.wait()
            tg.cancel_scope.cancel()

    async def _keep(self, service: Callable[[], Awaitable[None]]) -> None:
        """Run one of the engine's services while the engine runs. An error in it (a store
        error in a heartbeat, a type's validator failing in a delivery) is recorded and the
        service starts over, rather than ending the loop and with it every run."""
        while True:
            try:
                await service()
            except BaseException as exc:
                if not is_code_failure(exc):
                    raise
                self._internal_error(f"{service.__qualname__} failed and restarts: {exc!r}")
                await anyio.sleep(SERVICE_RESTART_PAUSE)

    async def _shutdown(self) -> None:
        locked: StoreLocked | None = None
        try:
            with anyio.fail_after(STOP_GRACE):
                await self.writer.flush()  # run rows say how their runs wait, too
        except StoreLocked as exc:
            locked = exc
        except TimeoutError:
            locked = StoreLocked(
                f"the store {self.store.location} stayed held by another process for "
                f"{STOP_GRACE:g} s",
                path=self.store.location,
                holder_pid=None,
            )
        except Exception as exc:
            self._internal_error(f"stopping: {exc!r}")
        if locked is not None:
            # Like a crash: the runs resume from what is durable (their side effects
            # waited for it), in the next engine. Nothing more waits for the file.
            self._internal_error(
                f"stopped with {self.writer.unwritten} writes of run records unwritten: {locked}"
            )
            self.store.stop_waiting()
            self._stop_event.set()
            return
        with contextlib.suppress(Exception):
            await anyio.to_thread.run_sync(self.store.stop_engine, self.id)
        self._stop_event.set()

    @property
    def store_blocked(self) -> StoreLocked | None:
        """Why the runs' record is not being written now (another process keeps the store
        locked), or None. The runs wait for it before any side effect."""
        writer = getattr(self, "writer", None)
        return None if writer is None else writer.blocked

    def _store_blocked(self, exc: StoreLocked) -> None:
        self._internal_error(f"waiting for the store to write the runs' record: {exc}")

    def _idle(self) -> bool:
        return self.writer.idle and self.tasks.attempts_in_progress == 0

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a coroutine in the engine's task group; its errors are kept, not raised."""

        async def guarded() -> None:
            try:
                await fn(*args)
            except BaseException as exc:
                # A KeyboardInterrupt or SystemExit let out of here would stop the loop.
                if not is_code_failure(exc):
                    raise
                self._internal_error(f"{getattr(fn, '__qualname__', fn)}: {exc!r}")

        self._tg.start_soon(guarded)

    def _internal_error(self, text: str) -> None:
        self.errors.append(text)
        log.error("flovyn_nb engine: %s", text)

    async def sleep_until(self, when: float) -> None:
        wait = Wait("sleep")
        entry = self.deadlines.add(when, lambda: wait.set_value(None))
        try:
            await wait.result()
        finally:
            entry.cancel()

    # -- calls from other threads ----------------------------------------------------------

    def _in_loop(self) -> bool:
        return threading.current_thread() is self._loop_thread

    def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._in_loop():
            raise EngineError(
                "this call blocks and cannot be made from workflow code; inside a workflow "
                "use the ctx methods (ctx.schedule_workflow, ...)"
            )
        return self._soon(fn, *args).result()

    def start_workflow(
        self, definition: WorkflowDefinition[Any], input: Any, *, workflow_id: str | None = None
    ) -> Started:
        input_json = storable(input, what=f"input of workflow {definition.name!r}")
        if definition.takes_input:
            serde.from_json(
                input_json, definition.input_type, what=f"input of workflow {definition.name!r}"
            )
        elif input is not None:
            raise InvalidInput(f"workflow {definition.name!r} takes no input, but one was given")
        if workflow_id is not None and (not isinstance(workflow_id, str) or not workflow_id):
            raise InvalidInput("workflow_id must be a non-empty string")
        return self._call(
            functools.partial(self.create_run, caller=threading.get_ident()),
            definition,
            input_json,
            workflow_id or str(uuid.uuid4()),
        )

    def resolve_promise(
        self,
        workflow_id: str,
        name: str,
        value: Any,
        *,
        reject: bool = False,
        reason: str = "",
        resolved_by: str = "api",
        allow_early: bool = True,
    ) -> None:
        self._call(self._settle, workflow_id, name, value, reject, reason, resolved_by, allow_early)

    def resolve_promise_soon(
        self,
        workflow_id: str,
        name: str,
        value: Any,
        *,
        reject: bool = False,
        reason: str = "",
        resolved_by: str = "panel",
    ) -> Future[None]:
        """Like :meth:`resolve_promise` without blocking (for button handlers): the future
        holds the outcome, e.g. ``InvalidInput`` for a value that does not fit the type."""
        return self._soon(self._settle, workflow_id, name, value, reject, reason, resolved_by)

    def cancel_soon(self, workflow_id: str) -> Future[None]:
        """Like :meth:`cancel` without blocking."""
        return self._soon(self._cancel, workflow_id)

    def _soon(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in the engine's task group, from another thread; the future
        holds its outcome. One hop to the loop (anyio's portal makes two: it waits for the
        task to be spawned, then for its result), which is most of a call's cost."""
        loop = self._loop
        if self._portal is None or loop is None:
            raise self._not_running()
        future: Future[T] = Future()
        with self._calls_lock:
            self._calls.add(future)
        future.add_done_callback(self._answered)
        try:
            loop.call_soon_threadsafe(self._spawn, future, fn, args)
        except RuntimeError:  # the loop is closed
            self._answered(future)
            if self.failure is not None:
                raise self.failure from None
            raise EngineError("the flovyn engine stopped; call flovyn_nb.start() again") from None
        if self.failure is not None:  # it died meanwhile: nobody will take the call
            with contextlib.suppress(Exception):
                future.set_exception(self.failure)
        return future

    def _answered(self, future: Future[Any]) -> None:
        with self._calls_lock:
            self._calls.discard(future)

    def _spawn(
        self, future: Future[T], fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]
    ) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            self._tg.start_soon(self._fulfil, future, fn, args)
        except RuntimeError:  # the task group has closed: the engine is stopping
            future.set_exception(EngineError("the flovyn engine stopped before the call ran"))

    async def _fulfil(
        self, future: Future[T], fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]
    ) -> None:
        try:
            result = await fn(*args)
        except anyio.get_cancelled_exc_class():
            if self._stopping:  # otherwise the loop is dying: _died says why
                future.set_exception(EngineError("the flovyn engine stopped before the call ended"))
            raise
        except BaseException as exc:  # the caller's thread raises it
            future.set_exception(exc)
        else:
            future.set_result(result)

    def signal(self, workflow_id: str, name: str, value: Any) -> None:
        self._call(self._signal, workflow_id, name, value)

    def cancel(self, workflow_id: str) -> None:
        self._call(self._cancel, workflow_id)

    def _warm_store(self) -> None:
        """A deadline is near: have the store file open by then (see DeadlineQueue). An
        open file is touched too, or its idle release could fall just before the deadline."""
        self.start_soon(anyio.to_thread.run_sync, _warm, self.store)

    def activity(self) -> Activity:
        """The runs this engine holds and what they do, read on the engine loop (reading
        them from another thread could see them half-changed)."""
        return self._call(self._activity)

    async def _activity(self) -> Activity:
        runs = []
        for run in list(self.runs.values()):
            computing, doing = run.activity()
            runs.append(
                LiveRun(run.execution_id, run.workflow_id, run.definition.name, computing, doing)
            )
        return Activity(runs, self.tasks.attempts_in_progress, tuple(self.seen_runs))

    def flush(self) -> None:
        """Make everything recorded so far durable (queries call this first)."""
        portal = self._portal
        if portal is not None and not self._in_loop():
            try:
                portal.call(self.writer.flush)
            except Exception as exc:  # the portal stopped: the loop stopped or died meanwhile
                if self.failure is not None:
                    raise self.failure from None
                if not isinstance(exc, RuntimeError):
                    raise

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def wait_finished(self, execution_id: str, timeout: float | None) -> tuple[RunStatus, Any, Any]:
        """Block until the run ends; returns (status, output JSON, error JSON)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.failure is not None:
                raise self.failure
            woken = threading.Event()
            with self._finished:
                state = self._final.get(execution_id)
                running_here = execution_id in self.runs
                self._finish_waiters.setdefault(execution_id, set()).add(woken)
            try:
                if state is None and not running_here:
                    state = self.store.run_status(execution_id)
                    if state is None:
                        raise UnknownWorkflow(f"no run with execution id {execution_id}")
                if state is not None and state[0].is_terminal:
                    return state
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"run did not finish within {timeout:g} s")
                woken.wait(0.5 if remaining is None else min(remaining, 0.5))
            finally:
                with self._finished:
                    waiters = self._finish_waiters.get(execution_id)
                    if waiters is not None:
                        waiters.discard(woken)
                        if not waiters:
                            del self._finish_waiters[execution_id]
            if not self.running:
                # Without an engine only another process can finish it: watch the bell.
                time.sleep(self.poll_interval)

    # -- runs (loop) -----------------------------------------------------------------------

    async def create_run(
        self,
        definition: WorkflowDefinition[Any],
        input_json: Any,
        workflow_id: str,
        *,
        execution_id: str | None = None,
        parent: Run | None = None,
        caller: int = 0,
    ) -> Started:
        execution_id = execution_id or str(uuid.uuid4())
        now = self.clock.now()
        input_text = serde.dumps(input_json)

        new_run = NewRun(
            execution_id,
            workflow_id,
            definition.name,
            input_text,
            definition.source_hash,
            self.id,
            None if parent is None else parent.execution_id,
            now,
        )
        try:
            # The run row alone makes the start durable (it holds the input); its
            # WORKFLOW_STARTED event rides along with the run's first steps. Starts that
            # arrive together share one INSERT.
            await self.writer.commit(Write(new_run=new_run, caller=caller))
        except DuplicateWorkflowId:
            # Starting is idempotent: hand back the existing run.
            existing = await anyio.to_thread.run_sync(self.store.find_run, workflow_id)
            if existing is None:
                raise
            if existing.kind != definition.name:
                raise InvalidInput(
                    f"workflow id {workflow_id!r} is already used by a run of {existing.kind!r}"
                ) from None
            self.seen_runs[existing.id] = None
            return Started(existing.id, workflow_id, existing.kind, existing=True)
        run = Run(
            self,
            execution_id=execution_id,
            workflow_id=workflow_id,
            definition=definition,
            input_json=input_json,
            history=None,
            next_seq=1,
            parent_id=None if parent is None else parent.execution_id,
        )
        run.emit_started()
        self._adopt(run)
        return Started(execution_id, workflow_id, definition.name, existing=False)

    def _adopt(self, run: Run) -> None:
        self.seen_runs[run.execution_id] = None
        self.runs[run.execution_id] = run
        self._by_workflow_id[run.workflow_id] = run.execution_id
        self.start_soon(self._drive, run)

    async def _drive(self, run: Run) -> None:
        try:
            await run.execute()
        except BaseException as exc:
            if not is_code_failure(exc):
                raise
            self._internal_error(f"run {run.workflow_id}: {exc!r}")
            try:  # a run left RUNNING would never finish: end it FAILED, saying why
                if await run.fail_on_fault(exc):
                    return
            except Exception as again:
                self._internal_error(f"run {run.workflow_id}: recording its failure: {again!r}")
            self._forget(run)

    async def park(self, run: Run) -> None:
        """Give a replaying run back to the store: its code needs a definition (a task, a
        helper) that this process does not have yet. The next registration retries it."""
        self._forget(run)
        self.writer.drop_status(run.execution_id)  # the row keeps saying how it waited
        await self.writer.commit(
            Write(intents=[ReleaseRun(run.execution_id, self.id)]),
            wait_if_locked=True,
        )

    def _forget(self, run: Run) -> None:
        self.runs.pop(run.execution_id, None)
        if self._by_workflow_id.get(run.workflow_id) == run.execution_id:
            del self._by_workflow_id[run.workflow_id]

    def run_finished(self, run: Run, status: RunStatus, output: Any, error: Any) -> None:
        self._forget(run)
        if run.parent_id is not None:
            parent = self.runs.get(run.parent_id)
            if parent is not None:
                parent.deliver_child(run.execution_id, status, output, error)
        for listener in list(self._listeners):
            self._notify(listener, "finished", run.execution_id, status)
        with self._finished:
            self._final[run.execution_id] = (status, output, error)
            while len(self._final) > 1000:  # only recent ends are kept; older ones are read
                del self._final[next(iter(self._final))]
        self._wake_finish_waiters(run.execution_id)

    def _wake_finish_waiters(self, execution_id: str | None) -> None:
        """Wake the threads waiting for this run to end (None: for any run)."""
        with self._finished:
            if execution_id is None:
                waiters = [w for ws in self._finish_waiters.values() for w in ws]
            else:
                waiters = list(self._finish_waiters.get(execution_id, ()))
        for woken in waiters:
            woken.set()

    async def follow_child(self, parent: Run, child_execution_id: str) -> None:
        """A replayed parent waits on a child: deliver it if it already ended."""
        with self._finished:  # ended here moments ago: its row may not say so yet
            state = self._final.get(child_execution_id)
        if state is None:
            state = await anyio.to_thread.run_sync(self.store.run_status, child_execution_id)
        if state is not None and state[0].is_terminal:
            parent.deliver_child(child_execution_id, state[0], state[1], state[2])

    async def cancel_execution(self, execution_id: str) -> None:
        run = self.runs.get(execution_id)
        if run is not None:
            await run.request_cancel("parent cancelled")

    # -- recovery and ownership --------------------------------------------------------------

    def _on_registered(self, definition: Any) -> None:
        portal = self._portal
        if portal is None:
            return
        if self._in_loop():
            self.start_soon(self._recover)
        else:
            with contextlib.suppress(Exception):
                portal.start_task_soon(self._recover)

    async def _recover(self) -> None:
        kinds = self.registry.workflow_names()
        now = self.clock.now()
        claim: Claimed = await self.writer.commit(
            Write(
                intents=[
                    ownership.claim(
                        engine_id=self.id, kinds=kinds, now=now, stale_after=self.stale_after
                    )
                ]
            )
        )
        self._note_peers(claim.engines)
        for row, events in claim.runs:
            definition = self.registry.find_workflow(row.kind)
            if definition is None or row.id in self.runs:
                continue
            history = History(row.workflow_id, events)
            if history.ended is not None:
                self._repair_ended(row.id, history.ended)
                continue
            run = Run(
                self,
                execution_id=row.id,
                workflow_id=row.workflow_id,
                definition=definition,
                input_json=row.input,
                history=history,
                next_seq=history.last_seq + 1,
                parent_id=row.parent_id,
            )
            run.row_status = row.status
            if row.status is not RunStatus.RUNNING:  # e.g. WAITING: say so if replay moves on
                self.writer.note_status(run.execution_id, run.row_update)
            if history.last_seq == 0:  # the process died before the start event was written
                run.emit_started()
            self._adopt(run)
            self.inbox_changed(run)

    def _repair_ended(self, execution_id: str, ended: Recorded) -> None:
        """The run ended but the process died before its row said so: say it now."""
        payload = ended.payload
        status = {
            EventType.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
            EventType.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
        }.get(ended.type, RunStatus.FAILED)
        output = payload.get("output")
        error = payload.get("error")
        self.writer.submit(
            Write(
                run_update=RunUpdate(
                    execution_id,
                    status,
                    ended.ts,
                    None if output is None else serde.dumps(output),
                    None if error is None else serde.dumps(error),
                )
            ),
            urgent=True,
        )

    def promise_timed_out(self, run: Run, name: str) -> None:
        """A promise's deadline passed (called by the deadline queue).

        A resolve at or after the deadline fails in the store (``inbox_rules.check_settle``),
        so the promise timed out unless a resolve committed before it. When no such resolve
        can have gone unseen, the timeout is decided here and now, and written with its
        event; otherwise the store settles it (deadlines that pass together, in one
        statement) and says which came first.
        """
        pending = run.promise_waits.get(name)
        if pending is None:
            return  # settled meanwhile
        if self._timeout_is_ours(run.workflow_id, name, pending):
            run.time_out_promise(name)
            return
        self._due_timeouts.append((run, pending.promise_id))
        self._timeouts_event.set()

    def _timeout_is_ours(self, workflow_id: str, name: str, pending: PromiseWait) -> bool:
        """Whether nothing can have settled the promise without this engine knowing:
        - no resolve from this process is on its way to the store;
        - this process holds the store file, so every other process that committed before
          now has rung the doorbell already (it rings before it lets go of the file);
        - no other process rang since the store last said the promise was pending.
        A resolve that commits later comes after the deadline and fails."""
        if (
            pending.pending_at is None
            or pending.timeout_at is None
            or self.clock.now() < pending.timeout_at
            or (workflow_id, name) in self._settling
        ):
            return False
        tenure = self.store.tenure
        if not tenure:
            return False
        if tenure != self._bell_seen_in:
            # First look while holding the file this time: later, nobody else can commit
            # until it is let go (a wave of timeouts then costs one ``stat``, not one each).
            self._observe_bell()
            self._bell_seen_in = tenure
        return pending.pending_at == self.bell_gen

    async def _timeouts_loop(self) -> None:
        batch: _TimeoutBatch | None = None
        while True:
            await self._timeouts_event.wait()
            self._timeouts_event = anyio.Event()
            due, self._due_timeouts = self._due_timeouts, []
            # Timeouts that fall due while a batch waits for the writer join it; once it is
            # being written, a new batch starts (one statement per commit, never waiting
            # for the previous batch to be delivered).
            if batch is None or not batch.add(due):
                batch = _TimeoutBatch(due)
                self.start_soon(self._time_out, batch)

    async def _time_out(self, batch: _TimeoutBatch) -> None:
        try:
            rows: list[PromiseRow] = await self.writer.commit(
                Write(intents=[TimeOutPromises(batch.take)]),
                wait_if_locked=True,
            )
        except Exception as exc:
            self._internal_error(f"promise timeouts: {exc!r}")
            return
        for row in rows:
            run = batch.runs.get(row.id)
            if run is not None and row.execution_id in self.runs:
                run.deliver_promise(row, marked=row.delivered)

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_interval)
            try:
                await self.writer.commit(Write(intents=[Heartbeat(self.id, self.clock.now())]))
                await self._recover()
            except StoreLocked:
                continue  # the writer says so (Engine.store_blocked); beat again next time

    # -- the inbox ---------------------------------------------------------------------------

    def inbox_changed(self, run: Run) -> None:
        self._dirty.add(run.execution_id)
        self._inbox_event.set()

    async def _inbox_loop(self) -> None:
        while True:
            await self._inbox_event.wait()
            self._inbox_event = anyio.Event()
            ids, self._dirty = sorted(self._dirty & self.runs.keys()), set()
            if not ids:
                continue
            gen = self.bell_gen  # what the scan reads is at least this fresh
            try:
                inbox = await anyio.to_thread.run_sync(self.store.undelivered, ids)
            except Exception as exc:
                self._internal_error(f"inbox scan: {exc!r}")
                continue
            for promise in inbox.promises:
                run = self.runs.get(promise.execution_id)
                if run is not None:
                    run.deliver_promise(promise)
            for execution_id in ids:  # the promises still awaited were pending when read
                run = self.runs.get(execution_id)
                for pending in run.promise_waits.values() if run is not None else ():
                    pending.pending_at = max(pending.pending_at or 0, gen)
            for signal in inbox.signals:
                run = self.runs.get(signal.execution_id)
                if run is not None:
                    run.deliver_signal(signal.id, signal.name, signal.value)
            for execution_id in inbox.cancels:
                run = self.runs.get(execution_id)
                if run is not None and not run.cancel_requested:
                    self.start_soon(run.request_cancel, "requested from another process")

    def _note_peers(self, engines: list[EngineRow]) -> None:
        self._peers = {e.id: e.pid for e in engines if e.id != self.id and e.host == ownership.HOST}

    async def _refresh_peers(self) -> None:
        # Every engine not marked stopped, dead ones included: one that died before this
        # look is then found by _check_peers at once, like one that dies later.
        engines = await anyio.to_thread.run_sync(self.store.live_engines)
        self._note_peers(engines)

    def _check_peers(self) -> None:
        """A same-host engine whose process is gone is known at once: take its runs over."""
        dead = [engine_id for engine_id, pid in self._peers.items() if not pid_alive(pid)]
        if dead:
            for engine_id in dead:
                del self._peers[engine_id]
            self.start_soon(self._recover)

    def _observe_bell(self) -> bool:
        """Look at the doorbell (a ``stat``); if another process committed since the last
        look, count it and scan every run's inbox. Returns whether it had."""
        assert self._bell_watcher is not None
        if not self._bell_watcher.rung_by_others():
            return False
        self.bell_gen += 1
        self._wake_finish_waiters(None)  # runs finished elsewhere may be awaited here
        self._dirty.update(self.runs)
        if self._dirty:
            self._inbox_event.set()
        return True

    async def _watch_bell(self) -> None:
        last_refresh = 0.0
        refresh_due = False
        while True:
            await anyio.sleep(self.poll_interval)
            self._check_peers()
            rung = self._observe_bell()
            # A new engine may have registered: look at most twice a second, but put the
            # look off rather than drop it, or a peer that registered and went quiet
            # within the half second would never be watched (its death would then wait
            # for the heartbeat).
            refresh_due = refresh_due or rung
            if refresh_due and time.monotonic() - last_refresh > 0.5:
                refresh_due = False
                last_refresh = time.monotonic()
                self.start_soon(self._refresh_peers)

    async def _settle(
        self,
        workflow_id: str,
        name: str,
        value: Any,
        reject: bool,
        reason: str,
        resolved_by: str,
        allow_early: bool = True,
    ) -> None:
        run = self._live(workflow_id)
        validated = False
        if run is not None and not reject and name in run.promise_waits:
            type_hint = run.promise_waits[name].type_hint
            what = f"value for promise {name!r}"
            serde.from_json(storable(value, what=what), type_hint, what=what)
            validated = True
        status = PromiseStatus.REJECTED if reject else PromiseStatus.RESOLVED
        key = (workflow_id, name)  # its timeout, if due meanwhile, asks the store
        self._settling[key] += 1
        try:
            row: PromiseRow = await self.writer.commit(
                Write(
                    intents=[
                        SettlePromise(
                            workflow_id=workflow_id,
                            name=name,
                            status=status,
                            value=value,
                            reason=reason if reject else None,
                            resolved_by=resolved_by,
                            now=self.clock.now,  # called in the transaction: judges the deadline
                            validated=validated,
                            require_existing=not allow_early,
                        )
                    ]
                ),
                rows_current=True,
            )
        finally:
            self._settling[key] -= 1
            if not self._settling[key]:
                del self._settling[key]
        if run is not None:
            run.deliver_promise(row)

    async def _signal(self, workflow_id: str, name: str, value: Any) -> None:
        now = self.clock.now()
        await self.writer.commit(
            Write(intents=[SendSignal(workflow_id=workflow_id, name=name, value=value, now=now)]),
            rows_current=True,
        )
        run = self._live(workflow_id)
        if run is not None:
            self.inbox_changed(run)

    async def _cancel(self, workflow_id: str) -> None:
        run = self._live(workflow_id)
        if run is not None:
            await run.request_cancel("requested")
            return
        await self.writer.commit(
            Write(intents=[RequestCancel(workflow_id)]),
            rows_current=True,
        )

    def _live(self, workflow_id: str) -> Run | None:
        execution_id = self._by_workflow_id.get(workflow_id)
        return None if execution_id is None else self.runs.get(execution_id)

    # -- observation (panels, logs) ---------------------------------------------------------

    def observe_event(self, run: Run, row: EventRow) -> None:
        for listener in list(self._listeners):
            self._notify(listener, "event", run.execution_id, row)

    def submit_log(self, run: Run, row: LogRow) -> None:
        """Queue a log line (thread-safe: sync steps log from worker threads)."""
        if self._in_loop():
            self._log_on_loop(run, row)
        elif self._portal is not None:
            with contextlib.suppress(Exception):
                self._portal.start_task_soon(self._log_async, run, row)

    async def _log_async(self, run: Run, row: LogRow) -> None:
        self._log_on_loop(run, row)

    def _log_on_loop(self, run: Run, row: LogRow) -> None:
        self.writer.submit(Write(logs=[row]))
        for listener in list(self._listeners):
            self._notify(listener, "log", run.execution_id, row)

    def _notify(self, listener: Listener, what: str, execution_id: str, data: Any) -> None:
        try:
            listener(what, execution_id, data)
        except Exception as exc:
            self._internal_error(f"listener failed: {exc!r}")


class _Started:
    """The task status _main reports its start to (it runs outside a task group)."""

    def __init__(self, on_started: Callable[[], None]) -> None:
        self._on_started = on_started

    def started(self, value: object = None) -> None:
        self._on_started()


class _TimeoutBatch:
    """Promise timeouts written by one statement; open for more until the writer runs it."""

    def __init__(self, due: list[tuple[Run, str]]) -> None:
        self.runs = {promise_id: run for run, promise_id in due}
        self._lock = threading.Lock()  # the writer may run it in its thread
        self._taken = False

    def add(self, due: list[tuple[Run, str]]) -> bool:
        with self._lock:
            if self._taken:
                return False
            self.runs.update((promise_id, run) for run, promise_id in due)
            return True

    def take(self) -> list[str]:
        """The promise ids to time out (the store calls this in its transaction): the
        batch is closed from now on."""
        with self._lock:
            self._taken = True
            return list(self.runs)


def _warm(store: Store) -> None:
    with contextlib.suppress(StoreError):  # the write itself will say what is wrong
        store.warm()


# Before a service that failed starts over (one that fails at once would spin otherwise).
SERVICE_RESTART_PAUSE = 0.1

# How long stop() waits for the store to take the last writes (another process may hold
# it) before it stops anyway, like a crash.
STOP_GRACE = 3.0
