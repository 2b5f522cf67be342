"""The doorbell: a file that grows after every commit.

Other processes learn that the store changed with one ``stat`` instead of opening the
database, and re-read only when the bell moved. Counting bytes (appends are atomic) lets a
process tell its own rings from everybody else's: if the file grew by more than this
process wrote to it, someone else committed. The file is emptied now and then; a shrink
also counts as a ring by someone else.

What a ring writes says what the commit did:

- ``RING`` (one byte): a commit that a record does not describe (or an older writer's);
- ``JOINED`` (one byte): a commit that registered an engine, so that engines refresh their
  list of peers (a read, which takes the file from its holder) only when a peer may have
  joined, not on every commit of a busy neighbour: with a few processes sharing the file,
  a read per ring per engine starved the writers (1 run started per second under load
  instead of ~100);
- ``QUIET`` (one byte): a commit that changed nothing a live feed shows (a heartbeat);
- a line of JSON (``[...]\\n``, :mod:`flovyn_nb.store.news`): the runs it created or moved
  and the promises it created or settled, so that the server's live feed tells browsers
  without reading the store.

A watcher reads what others wrote only when asked to (:meth:`BellWatcher.news`, the live
feed) or to look for ``JOINED`` (engines); anything it cannot parse (a garbled file, a
newer writer's format) is a ring it cannot describe, never an error.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from flovyn_nb.store.news import News, decode

_ROLL_OVER = 1 << 20  # empty the file once it reaches 1 MiB
RING = b"."  # a commit
JOINED = b"E"  # a commit that registered an engine
QUIET = b"-"  # a commit that changed nothing the live feed shows
_NEWS_START = ord("[")
_SCAN_LIMIT = 1 << 16  # more new bytes than this: assume an engine joined among them
_NEWS_KEPT = 4096  # records a news watcher keeps between two looks (more: "read the store")


def mark(said: str | None) -> bytes:
    """What a commit writes to the bell: its records' line (``news.said``), ``QUIET`` for
    none, or ``RING`` when they are unknown or too long to send."""
    if said is None:
        return RING
    if said == "[]":
        return QUIET
    return said.encode("ascii") + b"\n"


def parse(data: bytes) -> tuple[bool, list[News] | None]:
    """(a ``JOINED`` ring is among ``data``, the records in it or ``None`` when some ring
    there says nothing or cannot be read)."""
    joined, known = False, True
    records: list[News] = []
    at = 0
    while at < len(data):
        byte = data[at]
        if byte == _NEWS_START:
            end = data.find(b"\n", at)
            if end < 0:
                return joined, None  # cut short (a garbled file): what it said is lost
            said = decode(data[at:end].decode("ascii", "replace"))
            if said is None:
                known = False
            else:
                records += said
            at = end + 1
            continue
        if byte == JOINED[0]:
            joined = True
        if byte != QUIET[0]:
            known = False  # RING, JOINED, or bytes of another writer's format
        at += 1
    return joined, records if known else None


class Bell:
    """The doorbell of one store file (see the module docs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._mine = 0  # bytes written by this process

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
                self._mine += os.write(fd, mark)
            except OSError:
                pass
            finally:
                os.close(fd)

    def read(self) -> tuple[int, int]:
        """(size of the bell file, bytes written by this process), read consistently."""
        with self._lock:
            try:
                size = self.path.stat().st_size
            except OSError:
                size = 0
            return size, self._mine

    def rings(self, start: int, end: int) -> bytes | None:
        """What was written between these two sizes (None when that cannot be told: too
        much to read, or the file was emptied meanwhile)."""
        if end - start > _SCAN_LIMIT:
            return None
        try:
            with self.path.open("rb") as file:
                file.seek(start)
                data = file.read(end - start)
        except OSError:
            return None
        return data if len(data) == end - start else None

    def marked(self, start: int, end: int) -> bool:
        """Whether the rings between these two sizes include a ``JOINED`` one (True when
        that cannot be told: too many to read, or the file was emptied meanwhile)."""
        data = self.rings(start, end)
        return data is None or parse(data)[0]

    def watcher(self) -> BellWatcher:
        """A watcher that counts rings from now on."""
        return BellWatcher(self)


class BellWatcher:
    """Tells whether anyone else rang since the last look (and, asked, what they said)."""

    def __init__(self, bell: Bell) -> None:
        self._bell = bell
        self._size, self._mine = bell.read()
        self._joined = False
        self._news: list[News] | None = None  # since the last news(); None: not all known
        self._wants_news = False  # nobody asked yet: do not read what was written
        self._rung = False  # rung since the last news()

    def rung_by_others(self) -> bool:
        size, mine = self._bell.read()
        grew, rang = size - self._size, mine - self._mine
        start = self._size
        self._size, self._mine = size, mine
        rung = grew < 0 or grew > rang
        if not rung:
            return False
        self._rung = True
        if self._joined and not self._wants_news:
            return True
        data = None if grew < 0 else self._bell.rings(start, size)
        joined, said = (True, None) if data is None else parse(data)
        self._joined = self._joined or joined
        if self._wants_news:
            if said is None or self._news is None or len(self._news) > _NEWS_KEPT:
                self._news = None
            else:
                self._news += said
        return True

    def engines_may_have_joined(self) -> bool:
        """Whether an engine registered among the rings seen since the last call."""
        joined, self._joined = self._joined, False
        return joined

    def news(self) -> list[News] | None:
        """What the rings seen by :meth:`rung_by_others` since the last call said
        (this process's own records among them); ``None`` when some ring could not be
        told (an older writer, the file emptied, too many) or, on the first call, when
        anything rang before (the watcher reads what was written only from then on)."""
        if not self._wants_news:
            self._wants_news = True
            said: list[News] | None = None if self._rung else []
        else:
            said = self._news
        self._news, self._rung = [], False
        return said
