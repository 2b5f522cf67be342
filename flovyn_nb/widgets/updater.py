"""The one thread per process that updates panels.

Traitlets are not thread-safe, so after a panel is created only this thread writes its
traits. The client's change feed (one subscription per store shown) reports what this
process's engine records (on the engine loop, where it must be quick: it only queues it on
the panels that show that run and marks them dirty) and when another process rang the
store's doorbell; this thread reads the store when needed, builds the new state and sets
the trait, at most once per ``min_interval`` per panel (0.1 s: ≤ 10 updates per second).
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from flovyn_nb import client


class Target(Protocol):
    """What the updater drives: a run panel or a dashboard."""

    min_interval: float
    store: Path | str

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
    """The thread that refreshes panels and the dashboard (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._entries: dict[Target, _Entry] = {}
        self._routes: dict[str, list[Target]] = {}
        self._everything: list[Target] = []
        self._feeds: dict[Path | str, client.Subscription | None] = {}  # None: being subscribed
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
            subscribe = target.store not in self._feeds and not self._stopping
            if subscribe:
                self._feeds[target.store] = None
        if subscribe:
            store = target.store
            sub = client.watch(lambda change: self._on_change(store, change), store=store)
            with self._cond:
                self._feeds[store] = sub

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
            feeds, self._feeds = list(self._feeds.values()), {}
        for sub in feeds:
            if sub is not None:
                sub.close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the change feed (engine loop for live items, feed thread for bells) ------------

    def _on_change(self, store: Path | str, change: client.Change) -> None:
        with self._cond:
            if change.from_elsewhere:
                # Another process committed, or an engine (re)started: runs may have changed
                # while nobody listened. Every panel on the store that may still change re-reads.
                for target, marked in self._entries.items():
                    if target.store == store and target.wants_bell():
                        marked.dirty = marked.bell = True
                self._cond.notify()
                return
            targets = self._routes.get(change.execution_id, []) + [
                t for t in self._everything if t.store == store
            ]
            woke = False
            for target in targets:
                if target.offer(change.what, change.execution_id, change.data):
                    entry = self._entries.get(target)
                    if entry is not None:
                        entry.dirty = woke = True
            if woke:
                self._cond.notify()

    # -- the updater thread --------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping:
            now = time.monotonic()
            due: list[tuple[Target, bool]] = []
            with self._cond:
                wake = None
                ringing = {target.store for target in self._entries if target.wants_bell()}
                for store, sub in self._feeds.items():
                    if sub is not None:
                        sub.bell = store in ringing  # final panels need no news from elsewhere
                for target, entry in self._entries.items():
                    if not entry.dirty:
                        continue
                    ready = entry.last + target.min_interval
                    if ready <= now:
                        due.append((target, entry.bell))
                        entry.dirty = entry.bell = False
                    else:
                        wake = ready if wake is None else min(wake, ready)
                if not due:
                    # Sleep until a panel is due, added or marked (by the feed, or a button).
                    timeout = None if wake is None else max(0.0, wake - time.monotonic())
                    self._cond.wait(timeout)
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
