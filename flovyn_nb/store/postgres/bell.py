"""The doorbell on PostgreSQL: ``NOTIFY`` in every write transaction, ``LISTEN`` on one
connection per store handle.

A notification is delivered at commit, to every listener on the database, carrying the
token of the handle that wrote; the listening thread counts the ones whose token is not
its own. ``rung_by_others`` then compares counters (no query): the engine and the change
feed look at it as often as they like, and a write wakes them as soon as PostgreSQL
delivers it. The listener starts with the first watcher and reconnects on its own; a
reconnection counts as a ring (a commit may have gone unheard meanwhile).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import psycopg

from flovyn_nb.errors import StoreError
from flovyn_nb.store.postgres.connect import Target, connect

CHANNEL = "flovyn_nb"
_LISTEN_SLICE = 0.5  # seconds a wait for notifications lasts before the thread looks up
_RECONNECT_PAUSE = 0.5


class PgBell:
    """The doorbell of one store handle (see the module docs)."""

    def __init__(self, target: Target, token: str, ring: Any) -> None:
        self._target = target
        self.token = token
        self._ring = ring  # the store's standalone ring (a NOTIFY on a pooled connection)
        self._lock = threading.Lock()
        self._others = 0  # rings by other handles heard so far
        self._ready = threading.Event()
        self._failure: StoreError | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    def ring(self) -> None:
        self._ring()

    def heard(self) -> int:
        with self._lock:
            return self._others

    def watcher(self) -> PgBellWatcher:
        """A watcher that counts rings from now on (the listener is up when it returns).

        Raises:
            StoreError: the listening connection cannot be made.
        """
        self._listen()
        return PgBellWatcher(self)

    def _listen(self) -> None:
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
                con.execute(f"LISTEN {CHANNEL}")
                if not first:
                    with self._lock:
                        self._others += 1  # something may have committed while deaf
                first = False
                self._ready.set()
                while not self._closed.is_set():
                    for note in con.notifies(timeout=_LISTEN_SLICE):
                        if note.payload != self.token:
                            with self._lock:
                                self._others += 1
            except psycopg.Error:
                self._closed.wait(_RECONNECT_PAUSE)
            finally:
                with contextlib.suppress(psycopg.Error):
                    con.close()

    def close(self) -> None:
        self._closed.set()


class PgBellWatcher:
    """Tells whether another handle committed since the last look."""

    def __init__(self, bell: PgBell) -> None:
        self._bell = bell
        self._seen = bell.heard()
        self._rung = False

    def rung_by_others(self) -> bool:
        heard = self._bell.heard()
        rung, self._seen = heard != self._seen, heard
        self._rung = self._rung or rung
        return rung

    def engines_may_have_joined(self) -> bool:
        # A notification does not say what was written: any ring may be a registration.
        rung, self._rung = self._rung, False
        return rung
