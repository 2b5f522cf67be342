"""The doorbell: a file that grows by one byte after every commit.

Other processes learn that the store changed with one ``stat`` instead of opening the
database, and re-read only when the bell moved. Counting bytes (appends are atomic) lets a
process tell its own rings from everybody else's: if the file grew by more than this
process rang, someone else committed. The file is emptied now and then; a shrink also
counts as a ring by someone else.

A commit that registered an engine rings with a different byte (``JOINED``), so that
engines refresh their list of peers (a read, which takes the file from its holder) only
when a peer may have joined, not on every commit of a busy neighbour: with a few
processes sharing the file, a read per ring per engine starved the writers (1 run
started per second under load instead of ~100).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

_ROLL_OVER = 1 << 20  # empty the file once it reaches 1 MiB
RING = b"."  # a commit
JOINED = b"E"  # a commit that registered an engine
_SCAN_LIMIT = 1 << 16  # more new rings than this: assume an engine joined among them


class Bell:
    """The doorbell of one store file (see the module docs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mine = 0  # rings by this process

    def ring(self, mark: bytes = RING) -> None:
        with self._lock:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            except OSError:
                return
            try:
                size = os.fstat(fd).st_size
                if size >= _ROLL_OVER:
                    os.ftruncate(fd, 0)
                os.write(fd, mark)
                self._mine += 1
            except OSError:
                pass
            finally:
                os.close(fd)

    def read(self) -> tuple[int, int]:
        """(size of the bell file, rings by this process), read consistently."""
        with self._lock:
            try:
                size = self.path.stat().st_size
            except OSError:
                size = 0
            return size, self._mine

    def marked(self, start: int, end: int) -> bool:
        """Whether the rings between these two sizes include a ``JOINED`` one (True when
        that cannot be told: too many to read, or the file was emptied meanwhile)."""
        if end - start > _SCAN_LIMIT:
            return True
        try:
            with self.path.open("rb") as file:
                file.seek(start)
                rings = file.read(end - start)
        except OSError:
            return True
        return len(rings) < end - start or JOINED in rings

    def watcher(self) -> BellWatcher:
        """A watcher that counts rings from now on."""
        return BellWatcher(self)


class BellWatcher:
    """Tells whether anyone else rang since the last look."""

    def __init__(self, bell: Bell) -> None:
        self._bell = bell
        self._size, self._mine = bell.read()
        self._joined = False

    def rung_by_others(self) -> bool:
        size, mine = self._bell.read()
        grew, rang = size - self._size, mine - self._mine
        start = self._size
        self._size, self._mine = size, mine
        rung = grew < 0 or grew > rang
        if rung and not self._joined:
            self._joined = grew < 0 or self._bell.marked(start, size)
        return rung

    def engines_may_have_joined(self) -> bool:
        """Whether an engine registered among the rings seen since the last call."""
        joined, self._joined = self._joined, False
        return joined
