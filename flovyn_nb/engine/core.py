"""What every part of the engine shares: its state, its task group, its error record.

The engine is assembled from one class per subsystem, each in its own module, stacked in
this order (each may use those below it; the few calls upward go through the stubs here):

    listeners -> runs (the registry of runs) -> inbox -> peers -> timeouts -> recovery
    -> attempts (retry, fork) -> engine (lifecycle and the calls from other threads)

All of it runs on the engine's loop unless a method says otherwise; ``engine.threads``
owns the hops between threads.
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.abc import TaskGroup

from flovyn_nb.definitions import Registry
from flovyn_nb.engine.clock import Clock
from flovyn_nb.engine.deadlines import DeadlineQueue
from flovyn_nb.engine.faults import is_code_failure
from flovyn_nb.engine.remote import RemoteWork
from flovyn_nb.engine.run import Run
from flovyn_nb.engine.schedules import Scheduler
from flovyn_nb.engine.tasks import TaskRunner
from flovyn_nb.engine.threads import EngineThread
from flovyn_nb.engine.waits import Wait
from flovyn_nb.engine.writer import Writer
from flovyn_nb.model import RunStatus
from flovyn_nb.store import DoorbellWatcher, Store

log = logging.getLogger("flovyn_nb")
log.addHandler(logging.NullHandler())

Listener = Callable[[str, str, Any], None]  # (what, execution_id, data), called on the loop


class EngineCore:
    """The engine's shared state (set by ``Engine.__init__`` and ``Engine._main``)."""

    id: str
    store: Store
    clock: Clock
    registry: Registry
    rng: random.Random
    poll_interval: float
    heartbeat_interval: float
    stale_after: float
    queues: list[str]  # the queues whose runs this engine claims
    max_runs: int | None  # at most this many runs held at once (a worker's --concurrency)
    draining: bool  # stopping gracefully: claims nothing more
    _claiming: bool  # a claim loop runs (recovery.py)
    _claim_again: bool
    _backlog: bool  # the last claim left runs waiting for a free slot
    _retry_at: float | None  # a claim is due then (a queue's rate limit)
    _work_watcher: DoorbellWatcher | None
    _slot_watcher: DoorbellWatcher | None
    scheduler: Scheduler  # cron schedules (schedules.py), from _main on
    thread: EngineThread
    errors: list[str]  # internal errors, kept for inspection, never printed
    # the loop's services (from _main on)
    writer: Writer
    deadlines: DeadlineQueue
    tasks: TaskRunner
    remote: RemoteWork  # queued tasks and child runs across engines (remote.py)
    workflow_threads: anyio.CapacityLimiter
    _tg: TaskGroup
    # the runs this engine holds, by execution id, and by workflow id
    runs: dict[str, Run]
    seen_runs: dict[str, None]  # every run started, handed back by a start, or adopted
    _by_workflow_id: dict[str, str]
    # listeners and threads waiting for ends (listeners.py)
    _listeners: list[Listener]
    _finished: threading.Lock
    _final: dict[str, tuple[RunStatus, Any, Any]]
    _final_gen: dict[str, int]  # bell_gen when each of _final was recorded
    _finish_waiters: dict[str, set[threading.Event]]
    # the inbox (inbox.py)
    _dirty: set[str]
    _inbox_event: anyio.Event
    _settling: Counter[tuple[str, str]]
    # the doorbell and peers (peers.py)
    bell_gen: int
    _bell_watcher: DoorbellWatcher | None
    _bell_seen_in: int
    _peers: dict[str, int]
    # promise timeouts (timeouts.py)
    _timeouts_event: anyio.Event
    _due_timeouts: list[tuple[Run, str]]

    def in_loop(self) -> bool:
        """Whether the caller is the engine loop's thread."""
        return self.thread.in_loop()

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

    # Calls up the stack (defined by a subsystem above the one calling them).

    async def _recover(self) -> None:
        """Claim the runs this engine can execute (recovery.py)."""
        raise NotImplementedError

    async def _record_definitions(self, definitions: Sequence[Any]) -> None:
        """Record registered definitions in the store's catalog (engine.py)."""
        raise NotImplementedError

    def inbox_changed(self, execution_id: str) -> None:
        """The run waits on something new: scan its inbox (inbox.py)."""
        raise NotImplementedError

    def promise_timed_out(self, execution_id: str, name: str) -> None:
        """A promise's deadline passed (timeouts.py)."""
        raise NotImplementedError


__all__ = ["EngineCore", "Listener", "log"]
