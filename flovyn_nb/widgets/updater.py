"""The one thread per process that updates panels.

Traitlets are not thread-safe, so after a panel is created only this thread writes its
traits. The engine's listener (called on the engine loop, where it must be quick) only
queues what happened on the panels that show that run and marks them dirty; this thread
reads the store when needed, builds the new state and sets the trait, at most once per
``min_interval`` per panel (0.1 s: ≤ 10 updates per second). Runs executed by another
process are noticed through the store's doorbell: one ``stat`` per store every 0.1 s,
and a re-read only when it moved.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Protocol

from flovyn_nb import client
from flovyn_nb.store import DoorbellWatcher
from flovyn_nb.widgets.state import open_store

BELL_INTERVAL = 0.1


class Target(Protocol):
    """What the updater drives: a run panel or a dashboard."""

    min_interval: float
    store: Path

    def routes(self) -> set[str] | None:
        """Execution ids whose events this target wants (None: every run's)."""

    def offer(self, what: str, execution_id: str, data: Any) -> bool:
        """Queue a listener item; True when it changes what the target shows. Called on
        the engine loop, under the updater's lock: append and return, nothing more."""

    def wants_bell(self) -> bool:
        """Whether changes by other processes may still matter (False once final)."""

    def update(self, *, bell: bool) -> None:
        """Refresh and set traits (on the updater thread only)."""

    def fail(self, exc: BaseException) -> None:
        """``update`` raised: keep the message for the view (updater thread)."""


class _Entry:
    __slots__ = ("bell", "dirty", "last")

    def __init__(self) -> None:
        self.dirty = False
        self.bell = False
        self.last = -1e9  # monotonic time of the last update


class Updater:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: dict[Target, _Entry] = {}
        self._routes: dict[str, list[Target]] = {}
        self._everything: list[Target] = []
        self._watchers: dict[Path, DoorbellWatcher] = {}
        self._engine: weakref.ref[Any] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    # -- any thread ------------------------------------------------------------------

    def add(self, target: Target) -> None:
        """Drive ``target`` (again); it is updated once straight away."""
        with self._cond:
            entry = self._entries.setdefault(target, _Entry())
            entry.dirty = True
            self._reroute()
            self._ensure_thread()
            self._cond.notify()

    def remove(self, target: Target) -> None:
        with self._cond:
            self._entries.pop(target, None)
            self._reroute()

    def mark(self, target: Target, *, bell: bool = False) -> None:
        with self._cond:
            entry = self._entries.get(target)
            if entry is not None:
                entry.dirty = True
                entry.bell = entry.bell or bell
                self._cond.notify()

    def _reroute(self) -> None:
        routes: dict[str, list[Target]] = {}
        everything = []
        for target in self._entries:
            wanted = target.routes()
            if wanted is None:
                everything.append(target)
            else:
                for execution_id in wanted:
                    routes.setdefault(execution_id, []).append(target)
        self._routes, self._everything = routes, everything

    def _ensure_thread(self) -> None:
        if self._stopping:
            return
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="flovyn-panels", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (at interpreter exit: it must not be frozen mid-read, holding
        a DuckDB connection while duckdb is torn down)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- engine loop -------------------------------------------------------------------

    def _listener(self, what: str, execution_id: str, data: Any) -> None:
        with self._cond:
            targets = self._routes.get(execution_id, []) + self._everything
            woke = False
            for target in targets:
                if target.offer(what, execution_id, data):
                    entry = self._entries.get(target)
                    if entry is not None:
                        entry.dirty = woke = True
            if woke:
                self._cond.notify()

    # -- the updater thread --------------------------------------------------------------

    def _attach_engine(self) -> None:
        """Listen to this process's engine (again, after it was restarted).

        Only a weak reference is kept: a stopped engine must be freed (with its DuckDB
        objects) even while panels live on. A stopped engine never calls its listeners
        again, and only one runs at a time, so there is nothing to unsubscribe from.
        """
        engine = client.current_engine()
        attached = None if self._engine is None else self._engine()
        if engine is attached:
            return
        self._engine = None if engine is None else weakref.ref(engine)
        if engine is not None:
            engine.add_listener(self._listener)
        with self._cond:  # runs may have been missed while no listener was attached
            for target, entry in self._entries.items():
                if target.wants_bell():
                    entry.dirty = entry.bell = True

    def _ring_bells(self) -> None:
        with self._cond:
            stores = {t.store for t in self._entries if t.wants_bell()}
        for store in stores:
            watcher = self._watchers.get(store)
            if watcher is None:
                # A store unavailable right now is retried here; the panels say so on update.
                with contextlib.suppress(Exception):
                    self._watchers[store] = open_store(store).doorbell.watcher()
                continue
            if watcher.rung_by_others():
                with self._cond:
                    for target, entry in self._entries.items():
                        if target.store == store and target.wants_bell():
                            entry.dirty = entry.bell = True

    def _loop(self) -> None:
        next_bell = 0.0
        while not self._stopping:
            self._attach_engine()
            now = time.monotonic()
            if now >= next_bell:
                self._ring_bells()
                next_bell = now + BELL_INTERVAL
            due: list[tuple[Target, bool]] = []
            with self._cond:
                wake = None
                watching = False
                for target, entry in self._entries.items():
                    watching = watching or target.wants_bell()
                    if not entry.dirty:
                        continue
                    ready = entry.last + target.min_interval
                    if ready <= now:
                        due.append((target, entry.bell))
                        entry.dirty = entry.bell = False
                    else:
                        wake = ready if wake is None else min(wake, ready)
                if not due:
                    if watching:
                        wake = next_bell if wake is None else min(wake, next_bell)
                    timeout = None if wake is None else max(0.0, wake - time.monotonic())
                    # Idle with nothing to watch: sleep until a panel is added or marked,
                    # but look for an engine (re)start now and then.
                    self._cond.wait(timeout if timeout is not None else 1.0)
                    continue
            for target, bell in due:
                if self._stopping:
                    return
                try:
                    target.update(bell=bell)
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        target.fail(exc)
                with self._cond:
                    # Spacing counts from the end of an update, when its message went out.
                    entry_ = self._entries.get(target)
                    if entry_ is not None:
                        entry_.last = time.monotonic()


_updater: Updater | None = None
_lock = threading.Lock()


def updater() -> Updater:
    """The process's updater (created, with its thread, on first use)."""
    global _updater
    with _lock:
        if _updater is None:
            _updater = Updater()
            # Registered after the store's own exit hook, so it runs before it (LIFO).
            atexit.register(_updater.stop)
        return _updater
