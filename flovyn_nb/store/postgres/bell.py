"""The doorbells on PostgreSQL: ``NOTIFY`` in every write transaction, ``LISTEN`` on one
connection per store handle.

A store has three bells (``Store.doorbell``, ``work_bell``, ``slot_bell``), each a channel;
one listening thread hears them all and counts rings per channel.

A notification is delivered at commit, to every listener on the database, carrying the
token of the handle that wrote; the listening thread counts the ones whose token is not
its own. ``rung_by_others`` then compares counters (no query): the engine and the change
feed look at it as often as they like, and a write wakes them as soon as PostgreSQL
delivers it. The listener starts with the first watcher and reconnects on its own; a
reconnection counts as a ring (a commit may have gone unheard meanwhile).

A watcher's owner that would rather not poll registers a callback (``on_ring``): the
listening thread calls it after counting a ring by others, so the engine wakes as soon
as PostgreSQL delivers the notification instead of at its next look.

The doorbell's payload may carry what the commit did after the token, on a second line
(:mod:`flovyn_nb.store.news`): the listener keeps the last :data:`_KEPT` of those (as
text, decoded only when a watcher asks for :meth:`PgBellWatcher.news`). A payload of a
token alone, a reconnection, or a record that does not decode says "read the store".
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable

import psycopg

from flovyn_nb.errors import StoreError
from flovyn_nb.store.news import News, decode
from flovyn_nb.store.postgres.connect import Target, connect

CHANNEL = "flovyn_nb"  # every commit
WORK_CHANNEL = "flovyn_nb_work"  # a commit left runs waiting for an engine
SLOT_CHANNEL = "flovyn_nb_slot"  # a commit ended runs (a queue slot is free)
CHANNELS = (CHANNEL, WORK_CHANNEL, SLOT_CHANNEL)
_LISTEN_SLICE = 0.5  # seconds a wait for notifications lasts before the thread looks up
_RECONNECT_PAUSE = 0.5
_KEPT = 4096  # doorbell records kept for news watchers (older ones: "read the store")


class Listener:
    """The listening side of one store handle's bells (see the module docs)."""

    def __init__(self, target: Target, token: str) -> None:
        self._target = target
        self.token = token
        self._lock = threading.Lock()
        self._others = dict.fromkeys(CHANNELS, 0)  # rings by other handles heard so far
        # (doorbell ring number, its record line or None), the last _KEPT of them
        self._said: deque[tuple[int, str | None]] = deque(maxlen=_KEPT)
        self._callbacks: list[Callable[[], None]] = []  # called on the listening thread
        self._ready = threading.Event()
        self._failure: StoreError | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def heard(self, channel: str) -> int:
        with self._lock:
            return self._others[channel]

    def on_ring(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` (on the listening thread; it must not block) after every
        ring by others; returns the function that stops it."""
        with self._lock:
            self._callbacks.append(callback)

        def stop() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return stop

    def said(self, after: int, upto: int) -> list[News] | None:
        """The records of doorbell rings number ``after + 1`` to ``upto`` (None when one
        of them carried none, or is no longer kept)."""
        if upto <= after:
            return []
        with self._lock:
            kept = [said for number, said in self._said if after < number <= upto]
        if len(kept) != upto - after:
            return None
        records: list[News] = []
        for line in kept:
            got = None if line is None else decode(line)
            if got is None:
                return None
            records += got
        return records

    def _rang(self, channels: Iterable[str], said: str | None = None) -> None:
        with self._lock:
            for channel in channels:
                self._others[channel] += 1
                if channel == CHANNEL:
                    self._said.append((self._others[channel], said))
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def listen(self) -> None:
        """Start the listening thread (it is up when this returns).

        Raises:
            StoreError: the listening connection cannot be made.
        """
        with self._lock:
            if self._closed.is_set():
                raise StoreError(f"the store {self._target.location} is closed")
            if self._thread is None:
                self._failure = None
                self._ready.clear()
                self._thread = threading.Thread(
                    target=self._serve, name="flovyn-pg-listen", daemon=True
                )
                self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            failure = self._failure
            with self._lock:
                self._thread = None
            raise failure

    def _serve(self) -> None:
        first = True
        while not self._closed.is_set():
            try:
                con = connect(self._target)
            except StoreError as exc:
                if first:
                    self._failure = exc
                    self._ready.set()
                    return
                self._closed.wait(_RECONNECT_PAUSE)
                continue
            try:
                for channel in CHANNELS:
                    con.execute(f"LISTEN {channel}")
                if not first:
                    self._rang(CHANNELS)  # something may have committed while deaf
                first = False
                self._ready.set()
                while not self._closed.is_set():
                    for note in con.notifies(timeout=_LISTEN_SLICE):
                        token, _, said = note.payload.partition("\n")
                        if token != self.token and note.channel in self._others:
                            self._rang([note.channel], said or None)
            except psycopg.Error:
                self._closed.wait(_RECONNECT_PAUSE)
            finally:
                with contextlib.suppress(psycopg.Error):
                    con.close()

    def close(self) -> None:
        self._closed.set()


class PgBell:
    """One bell (a channel) of a store handle: ``ring`` notifies on a pooled connection
    (a commit notifies inside its own transaction instead)."""

    def __init__(self, listener: Listener, channel: str, ring: Callable[[str], None]) -> None:
        self.listener = listener
        self.channel = channel
        self._ring = ring

    def ring(self) -> None:
        self._ring(self.channel)

    def heard(self) -> int:
        return self.listener.heard(self.channel)

    def watcher(self) -> PgBellWatcher:
        """A watcher that counts rings from now on (the listener is up when it returns).

        Raises:
            StoreError: the listening connection cannot be made.
        """
        self.listener.listen()
        return PgBellWatcher(self)


class PgBellWatcher:
    """Tells whether another handle rang the bell since the last look."""

    def __init__(self, bell: PgBell) -> None:
        self._bell = bell
        self._seen = bell.heard()
        self._told = self._seen  # rings whose records news() gave
        self._rung = False

    def on_ring(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on the listening thread after any ring by others (of any
        of the handle's bells); returns the function that stops it."""
        return self._bell.listener.on_ring(callback)

    def rung_by_others(self) -> bool:
        heard = self._bell.heard()
        rung, self._seen = heard != self._seen, heard
        self._rung = self._rung or rung
        return rung

    def engines_may_have_joined(self) -> bool:
        # A notification does not say what was written: any ring may be a registration.
        rung, self._rung = self._rung, False
        return rung

    def news(self) -> list[News] | None:
        """What the rings seen by :meth:`rung_by_others` since the last call said (None
        when some of them carried no record, or for a bell other than the doorbell)."""
        told, self._told = self._told, self._seen
        if self._bell.channel != CHANNEL:
            return None if self._seen != told else []
        return self._bell.listener.said(told, self._seen)
