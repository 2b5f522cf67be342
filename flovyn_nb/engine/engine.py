"""The engine: one per process, a daemon thread running an anyio loop.

Its thread and every call into it from other threads (a notebook cell, a test, the CLI, a
button) go through ``engine.threads``, which refuses, rather than deadlocks, a blocking
call made from the loop itself.

The engine runs its loop in a thread of its own, so it knows when the loop ends. One that
ends without ``stop()`` (it should not: user code's failures, ``KeyboardInterrupt`` and
``SystemExit`` included, are their step's, see ``faults``) is reported: ``running`` turns
False, ``failure`` says why, and every call raises that :class:`EngineStopped`.

Services on the loop: the group-commit writer, the deadline queue, the inbox (deliveries
of promises, signals and cancellations), the doorbell watcher and the heartbeat, which
also claims runs whose owner died. All but the writer start over after an error.

The engine is assembled from one class per subsystem (see ``engine.core``); this module
holds its lifecycle and the calls other threads make. It implements ``host.Host``, all a
run sees of it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any

import anyio

from flovyn_nb import serde
from flovyn_nb.definitions import Registry, WorkflowDefinition, registry
from flovyn_nb.engine import catalog, logcapture, ownership, tuning
from flovyn_nb.engine.attempts import Attempts
from flovyn_nb.engine.clock import Clock, SystemClock
from flovyn_nb.engine.core import Listener
from flovyn_nb.engine.deadlines import DeadlineQueue
from flovyn_nb.engine.faults import describe, is_code_failure, storable
from flovyn_nb.engine.host import Started
from flovyn_nb.engine.queues import queue_names
from flovyn_nb.engine.remote import RemoteWork
from flovyn_nb.engine.runs import Activity, LiveRun
from flovyn_nb.engine.schedules import Scheduler, declared
from flovyn_nb.engine.tasks import TaskRunner
from flovyn_nb.engine.threads import EngineThread, Status, offload
from flovyn_nb.engine.writer import Writer
from flovyn_nb.errors import (
    EngineError,
    EngineStopped,
    InvalidInput,
    StoreError,
    StoreLocked,
)
from flovyn_nb.store import Store, open_store

__all__ = ["Activity", "Engine", "Listener", "LiveRun", "Started"]


class Engine(Attempts):
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
        queues: the queues whose runs it claims (default ``["default"]``).
        max_runs: at most this many runs held at once (default: no limit).
        listener: called on the loop with ``(what, execution_id, data)`` for every item
            (``"claimed"``: data is the workflow id; ``"finished"``: the final status).
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
        queues: Sequence[str] | None = None,
        max_runs: int | None = None,
        listener: Listener | None = None,
    ) -> None:
        if max_concurrent_tasks < 1:
            raise InvalidInput("max_concurrent_tasks must be at least 1")
        self.queues = queue_names(queues)
        if max_runs is not None and max_runs < 1:
            raise InvalidInput(f"max_runs must be at least 1, got {max_runs}")
        self.max_runs = max_runs
        self.draining = False
        self._claiming = False
        self._claim_again = False
        self._backlog = False
        self._retry_at = None
        self._work_watcher = None
        self._slot_watcher = None
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
        self.errors = []
        self.runs = {}
        # every run this engine started, was handed back by an idempotent start, or adopted
        self.seen_runs = {}
        self._by_workflow_id = {}
        # A listener given here hears everything, the claims made while starting included.
        self._listeners = [] if listener is None else [listener]
        self._finished = threading.Lock()  # guards the two below
        self._final = {}  # recent ends, for handles
        self._final_gen = {}
        # threads blocked in wait_finished, by run: each is woken when its run ends (not
        # at every run's end: a thread waking steals the loop's GIL)
        self._finish_waiters = {}
        self._dirty = set()
        # Commits by other processes seen so far (doorbell rings); see promise_timed_out.
        self.bell_gen = 0
        self._bell_watcher = None
        self._bell_seen_in = 0  # the lease tenure in which the bell was last looked at
        # in-process resolves in flight: (workflow id, promise name) -> how many
        self._settling = Counter()
        self._peers = {}  # other engines on this host: id -> pid
        self.thread = EngineThread("flovyn-engine", on_died=self._died)
        self._lifecycle = threading.Lock()  # guards start/teardown (the loop may die any time)
        self._unsubscribe: Callable[[], None] | None = None

    # -- lifecycle (caller threads) ----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.thread.running

    @property
    def failure(self) -> EngineStopped | None:
        """Why the loop stopped on its own, if it did (every call raises it then)."""
        return self.thread.failure

    def start(self) -> Engine:
        if self.thread.running:
            raise EngineError("this engine is already running")
        logcapture.install()
        try:
            self.thread.start(self._main)
        except BaseException:
            self._teardown()
            raise
        with self._lifecycle:
            if not self.thread.alive:  # it died already: _died said why
                raise self.thread.not_running()
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
        if not self.thread.running:
            return
        if self.thread.in_loop():
            raise EngineError("the engine cannot be stopped from inside a workflow or task")
        self.thread.stopping = True
        with self._lifecycle:  # no new recoveries from registrations while stopping
            unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
        with contextlib.suppress(Exception):
            self.thread.call_portal(self._shutdown)
        self._teardown()

    def _teardown(self) -> None:
        """Let go of everything the engine holds (once; from any thread, the loop's too)."""
        with self._lifecycle:
            host = self.thread.detach()
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
        EngineThread.join(host)
        tasks = getattr(self, "tasks", None)
        if tasks is not None:
            tasks.close()
        logcapture.uninstall()
        self.store.close()
        self._wake_finish_waiters(None)

    def _died(self, cause: BaseException | None) -> None:
        """The loop ended without stop(): record why, let go of the store, and fail every
        call, now and later, with one clear error."""
        while isinstance(cause, BaseExceptionGroup) and len(cause.exceptions) == 1:
            cause = cause.exceptions[0]  # a task group's wrapping says nothing
        why = "its loop ended" if cause is None else f"{type(cause).__name__}: {describe(cause)}"
        failure = EngineStopped(
            f"the flovyn engine stopped unexpectedly ({why}); its runs stay in the store: "
            "start a new engine with flovyn_nb.start() to resume them",
            cause=why,
        )
        self.thread.failure = failure  # before the teardown wakes the threads waiting
        self._internal_error(f"the engine's loop stopped: {cause!r}")
        self._teardown()
        self.thread.fail_calls(failure)

    def __enter__(self) -> Engine:  # noqa: PYI034
        return self if self.running else self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop ------------------------------------------------------------------------

    async def _main(self, task_status: Status) -> None:
        self.writer = Writer(self.store, linger=self._linger)
        self.writer.on_blocked = self._store_blocked
        self.deadlines = DeadlineQueue(self.clock, on_warm=self._warm_store)
        self.tasks = TaskRunner(self, max_concurrent_tasks=self._max_tasks)
        self.remote = RemoteWork(self, max_tasks=self._max_tasks)
        self.workflow_threads = anyio.CapacityLimiter(10_000)
        self._inbox_event = anyio.Event()
        self._timeouts_event = anyio.Event()
        self._due_timeouts = []
        self._bell_watcher = self.store.doorbell.watcher()
        self._work_watcher = self.store.work_bell.watcher()
        self._slot_watcher = self.store.slot_bell.watcher()
        self.scheduler = Scheduler(self)
        self.clock.attach(self._idle)
        self._stop_event = anyio.Event()
        now = self.clock.now()
        await offload(
            functools.partial(
                self.store.register_engine,
                self.id,
                pid=os.getpid(),
                host=ownership.HOST,
                proc_start=ownership.MY_START,
                now=now,
            )
        )
        await self._record_definitions(self.registry.definitions())
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self.thread.serve(tg)  # calls from other threads are taken from here on
            tg.start_soon(self.writer.run)  # keeps its own state: an error in it is fatal
            for service in (
                self.deadlines.run,
                self._inbox_loop,
                self._timeouts_loop,
                self._watch_bell,
                self._heartbeat_loop,
                self.scheduler.run,
                self.remote.run,
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
            await offload(self.store.stop_engine, self.id)
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
        return self.writer.idle and self.tasks.attempts_in_progress == 0 and not self.scheduler.busy

    async def _record_definitions(self, definitions: Sequence[Any]) -> None:
        """Say in the store's catalog what this engine serves (a failure to describe a
        definition is recorded, never a failed registration)."""
        try:
            rows = [catalog.describe(d) for d in definitions]
            await offload(
                functools.partial(
                    self.store.record_definitions,
                    rows,
                    engine_id=self.id,
                    queues=self.queues,
                    now=self.clock.now(),
                )
            )
            # @workflow(schedule=...): recorded (kept as fired) at every registration.
            for definition in definitions:
                schedule = declared(definition, self.clock.now())
                if schedule is not None:
                    await offload(self.store.put_schedule, schedule)
        except Exception as exc:  # the catalog is for others to read: never fatal here
            self._internal_error(f"recording definitions: {exc!r}")
        scheduler = getattr(self, "scheduler", None)
        if scheduler is not None:  # a registered kind may own a schedule
            scheduler.poke()

    # -- calls from other threads ----------------------------------------------------------

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
        return self.thread.call(
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
        self.thread.call(
            self._settle, workflow_id, name, value, reject, reason, resolved_by, allow_early
        )

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
        return self.thread.soon(self._settle, workflow_id, name, value, reject, reason, resolved_by)

    def cancel_soon(self, workflow_id: str, reason: str = "") -> Future[None]:
        """Like :meth:`cancel` without blocking."""
        return self.thread.soon(self._cancel, workflow_id, reason)

    def signal(self, workflow_id: str, name: str, value: Any) -> None:
        self.thread.call(self._signal, workflow_id, name, value)

    def cancel(self, workflow_id: str, reason: str = "") -> None:
        self.thread.call(self._cancel, workflow_id, reason)

    def _warm_store(self) -> None:
        """A deadline is near: have the store file open by then (see DeadlineQueue). An
        open file is touched too, or its idle release could fall just before the deadline."""
        self.start_soon(offload, _warm, self.store)

    def drain(self, grace: float) -> int:
        """Stop claiming runs and wait up to ``grace`` seconds for the task attempts in
        flight to end (a graceful stop; :meth:`stop` then hands the runs back). Returns
        how many attempts still run."""
        self.draining = True
        if not self.thread.running:
            return 0
        result: int = self.thread.call(self._drain, grace)
        return result

    async def _drain(self, grace: float) -> int:
        with anyio.move_on_after(grace):
            while self.tasks.attempts_in_progress:  # noqa: ASYNC110
                # Attempts end in threads and tasks of their own, which signal nothing; a
                # look every 20 ms is plenty for a stop that may take seconds.
                await anyio.sleep(0.02)
        return self.tasks.attempts_in_progress

    def flush(self) -> None:
        """Make everything recorded so far durable (queries call this first)."""
        if self.thread.running and not self.thread.in_loop():
            try:
                self.thread.call_portal(self.writer.flush)
            except Exception as exc:  # the portal stopped: the loop stopped or died meanwhile
                if self.failure is not None:
                    raise self.failure from None
                if not isinstance(exc, RuntimeError):
                    raise


def _warm(store: Store) -> None:
    with contextlib.suppress(StoreError):  # the write itself will say what is wrong
        store.warm()


# Before a service that failed starts over (one that fails at once would spin otherwise).
SERVICE_RESTART_PAUSE = 0.1

# How long stop() waits for the store to take the last writes (another process may hold
# it) before it stops anyway, like a crash.
STOP_GRACE = 3.0
