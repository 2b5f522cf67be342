"""The change feed behind :func:`flovyn_nb.client.watch`: "run X changed", one implementation
for the panels' updater, ``wait_all``, batch displays and ``flovyn-nb logs --follow``.

Two sources feed it. Runs executed by this process's engine are reported by the engine's
listener, on the engine loop, item by item (events, log lines, ends). Commits by other
processes are noticed through the store's doorbell: one thread per process (started on the
first subscription) ``stat``s the bell of every watched store every :data:`BELL_INTERVAL`
seconds (a PostgreSQL store wakes it as soon as a notification arrives) and reports a
``"bell"`` when it moved, with what the rings said (:mod:`flovyn_nb.store.news`) when they
said it all. When an engine starts (or restarts) in this process the feed attaches to it
and reports ``"attached"``: what happened before it could listen may have changed anything.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from flovyn_nb.errors import UnknownWorkflow

if TYPE_CHECKING:
    from flovyn_nb.engine.engine import Engine
    from flovyn_nb.model import RunStatus
    from flovyn_nb.store import DoorbellWatcher, Store

BELL_INTERVAL = 0.02  # seconds between two looks at each watched store's doorbell (a stat)


@dataclass(frozen=True, slots=True)
class Change:
    """One item of the change feed (plain data).

    Attributes:
        what: ``"event"`` (``data`` is the recorded event row), ``"log"`` (a log line),
            ``"finished"`` (``data`` is the final ``RunStatus``), other engine items, or
            ``"bell"`` (another process committed to the store: ``data`` is the list of
            ``flovyn_nb.store.news.News`` its rings carried, or ``None`` when they did not
            say it all: re-read what matters) and ``"attached"`` (an engine started in
            this process: re-read everything).
        execution_id: the run the item is about (``""`` for ``bell`` and ``attached``).
        store: the location of the store the change happened in.
        data: the item's payload, see ``what``.
    """

    what: str
    execution_id: str
    store: str
    data: Any = None

    @property
    def from_elsewhere(self) -> bool:
        """Whether this says only "something may have changed" (bell, attached)."""
        return self.what in ("bell", "attached")


Callback = Callable[[Change], None]


class Subscription:
    """A running subscription; :meth:`close` (or leaving the ``with`` block) ends it.

    ``bell`` may be switched off and on while it runs: a subscriber that needs no news of
    other processes for now (every panel on the store is final) spares the doorbell look.
    """

    def __init__(self, feed: Feed, callback: Callback, store: str, bell: bool) -> None:
        self._feed = feed
        self.callback = callback
        self.store = store
        self._bell = bell

    @property
    def bell(self) -> bool:
        """Whether this subscriber hears of commits by other processes."""
        return self._bell

    @bell.setter
    def bell(self, value: bool) -> None:
        if value and not self._bell:
            self._bell = True
            self._feed.wake()  # it may be sleeping long, with nobody wanting the doorbell
        self._bell = value

    def close(self) -> None:
        """Stop calling the callback (idempotent)."""
        self._feed.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Feed:
    """The process's feed. ``current`` gives this process's running engine (or None);
    ``store_for`` a store handle on a location (to watch its doorbell)."""

    def __init__(
        self, current: Callable[[], Engine | None], store_for: Callable[[str], Store]
    ) -> None:
        self._current = current
        self._store_for = store_for
        self._cond = threading.Condition()
        self._subs: list[Subscription] = []
        self._watchers: dict[str, DoorbellWatcher] = {}
        self._unhook: dict[str, Callable[[], None]] = {}  # stop a watcher's wake-up call
        # Weak: a stopped engine must be freed (with its DuckDB objects) while the feed lives
        # on. A stopped engine never calls its listeners again: nothing to unsubscribe from.
        self._engine: weakref.ref[Engine] | None = None
        self._engine_store = ""
        self._rewatch = False  # an engine (re)started: watch through its store handle
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._woken = False

    def watch(self, callback: Callback, store: str, *, bell: bool = True) -> Subscription:
        sub = Subscription(self, callback, store, bell)
        with self._cond:
            self._subs.append(sub)
            self._cond.notify()
            if not self._stopping and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(target=self._loop, name="flovyn-feed", daemon=True)
                self._thread.start()
            self._cond.notify()
        self._attach()
        return sub

    def wake(self) -> None:
        """Look at the doorbells now (a subscriber wants them again, a bell rang)."""
        with self._cond:
            self._woken = True  # also when the thread is busy looking: once more then
            self._cond.notify()

    def nudge(self) -> None:
        """An engine was started in this process: attach to it now, not on the next round."""
        self._attach()

    def remove(self, sub: Subscription) -> None:
        with self._cond:
            if sub in self._subs:
                self._subs.remove(sub)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop the thread (at interpreter exit)."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- engine loop -----------------------------------------------------------------------

    def _listener(self, what: str, execution_id: str, data: Any) -> None:
        # Called on the engine loop: the callbacks only queue and signal.
        store = self._engine_store
        change = Change(what, execution_id, store, data)
        for sub in self._matching(store):
            sub.callback(change)

    # -- feed thread (and watch) -----------------------------------------------------------

    def _matching(self, store: str, *, bell_only: bool = False) -> list[Subscription]:
        with self._cond:
            return [s for s in self._subs if s.store == store and (s.bell or not bell_only)]

    def _attach(self) -> None:
        """Listen to this process's engine (again, after it was restarted)."""
        engine = self._current()
        with self._cond:
            attached = None if self._engine is None else self._engine()
            if engine is attached:
                return
            self._engine = None if engine is None else weakref.ref(engine)
            self._rewatch = True
            if engine is not None:
                self._engine_store = engine.store.location
                engine.add_listener(self._listener)
            subs = list(self._subs)
        for sub in subs:  # runs may have changed while no listener was attached
            with contextlib.suppress(Exception):
                sub.callback(Change("attached", "", sub.store))

    def _ring_bells(self) -> None:
        with self._cond:
            stores = {s.store for s in self._subs if s.bell}
            rewatch, self._rewatch = self._rewatch, False
        # Its own commits must not ring: after an engine (re)started, watch through the
        # handle the engine uses.
        for gone in set(self._watchers) if rewatch else set(self._watchers) - stores:
            del self._watchers[gone]
            self._unhook.pop(gone, lambda: None)()
        for store in stores:
            watcher = self._watchers.get(store)
            if watcher is None:
                # A store unavailable right now is retried on the next round; readers say so.
                with contextlib.suppress(Exception):
                    watcher = self._store_for(store).doorbell.watcher()
                    watcher.news()  # keep what the rings say from now on
                    self._watchers[store] = watcher
                    # A backend that hears rings on a thread of its own (PostgreSQL's
                    # LISTEN) wakes this loop at once instead of at the next look.
                    on_ring = getattr(watcher, "on_ring", None)
                    if callable(on_ring):
                        self._unhook[store] = on_ring(self.wake)
                continue
            if watcher.rung_by_others():
                change = Change("bell", "", store, watcher.news())
                for sub in self._matching(store, bell_only=True):
                    with contextlib.suppress(Exception):
                        sub.callback(change)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                ringing = any(s.bell for s in self._subs)
            self._attach()  # an engine started without a nudge (the next round finds it)
            self._ring_bells()
            with self._cond:
                if not self._stopping and not self._woken:
                    # Nobody needs the doorbell: sleep until a subscription comes.
                    self._cond.wait(BELL_INTERVAL if ringing else 1.0)
                self._woken = False


def wait_without_engine(
    store: Store, execution_id: str, timeout: float | None
) -> tuple[RunStatus, Any, Any]:
    """Block until a run executed by another process ends (a handle's ``result()`` with
    no engine here): re-read its status only when the doorbell says another process
    committed.

    Raises:
        UnknownWorkflow: no such run.
        TimeoutError: it did not end within ``timeout`` seconds.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    watcher = store.doorbell.watcher()
    while True:
        state = store.run_status(execution_id)
        if state is None:
            raise UnknownWorkflow(f"no run with execution id {execution_id}")
        if state[0].is_terminal:
            return state
        while not watcher.rung_by_others():  # re-read only when another process committed
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"run did not finish within {timeout:g} s")
            time.sleep(0.02)
