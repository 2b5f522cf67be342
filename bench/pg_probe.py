"""Where a resolve -> resume on PostgreSQL spends its time, seen from the engine's process
(``flovyn_nb@pg`` only; the bench's own instrument, no engine code changed).

Three of the engine's store calls are wrapped at class level, in the bench process only,
so each records when it ran (``time.time()``, a list append: ~1 µs per call):

- ``Listener._rang``: the engine's listening thread counted a ring by another process
  (the resolver's ``NOTIFY`` reached this process and its thread got the GIL);
- ``PostgresStore.undelivered``: the engine's inbox scan (a read on a pooled connection,
  in a worker thread) began and returned;
- ``PostgresStore.commit``: the engine's writer committed (the promise's settlement in
  the run's history with the next step's start events), began and returned.

For one sample (call started at ``before`` in the resolver, its commit returned at
``returned``, the next step's body started at ``resumed``) :func:`Probe.segments` takes
the first of each mark after the previous one and returns the segments in ms.
"""

from __future__ import annotations

import bisect
import functools
import time
from collections.abc import Callable
from typing import Any

SEGMENTS = (
    "resolver_call",  # call start -> the resolving transaction committed (other process)
    "notify_heard",  # -> the engine's listening thread counted the ring
    "inbox_scan_start",  # -> the engine's inbox scan began (loop woke, thread handed)
    "inbox_scan",  # -> the scan's read returned
    "history_commit",  # -> the run resumed and its next commit returned (step start)
    "step_start",  # -> the step's body began (its worker thread ran it)
)


class Probe:
    """The marks recorded by the wrapped calls (see the module docs)."""

    def __init__(self) -> None:
        self.rings: list[float] = []
        self.scans: list[tuple[float, float]] = []
        self.commits: list[tuple[float, float]] = []
        self._undo: list[Callable[[], None]] = []

    def install(self) -> None:
        from flovyn_nb.store.postgres.backend import PostgresStore
        from flovyn_nb.store.postgres.bell import Listener

        self._wrap(Listener, "_rang", lambda: self.rings.append(time.time()))
        self._time(PostgresStore, "undelivered", self.scans)
        self._time(PostgresStore, "commit", self.commits)

    def clear(self) -> None:
        """Forget the marks so far (before each sample: the lists stay short)."""
        self.rings.clear()
        self.scans.clear()
        self.commits.clear()

    def uninstall(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def _wrap(self, owner: type, name: str, note: Callable[[], None]) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def noted(*args: Any, **kwargs: Any) -> Any:
            note()
            return original(*args, **kwargs)

        setattr(owner, name, noted)
        self._undo.append(lambda: setattr(owner, name, original))

    def _time(self, owner: type, name: str, into: list[tuple[float, float]]) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            began = time.time()
            try:
                return original(*args, **kwargs)
            finally:
                into.append((began, time.time()))

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, original))

    def segments(self, before: float, returned: float, resumed: float) -> dict[str, float] | None:
        """One sample's path in ms, or None when a mark is missing (e.g. a ring heard
        before the commit returned is fine; no ring between the call and the resume is not)."""
        ring = _first(self.rings, before, resumed)
        if ring is None:
            return None
        scan = _first_pair(self.scans, ring, resumed)
        if scan is None:
            return None
        commit = _first_pair(self.commits, scan[1], resumed)
        if commit is None:
            return None
        marks = [before, returned, ring, scan[0], scan[1], commit[1], resumed]
        # A ring may be heard before the resolver's process saw its own call return: then
        # the engine's segments count from that return, so the segments add up to the
        # sample's latency.
        for i in range(1, len(marks)):
            marks[i] = max(marks[i], marks[i - 1])
        return {name: (marks[i + 1] - marks[i]) * 1000 for i, name in enumerate(SEGMENTS)}


def _first(marks: list[float], after: float, until: float) -> float | None:
    i = bisect.bisect_left(marks, after)
    return marks[i] if i < len(marks) and marks[i] <= until else None


def _first_pair(
    pairs: list[tuple[float, float]], after: float, until: float
) -> tuple[float, float] | None:
    for began, ended in pairs:  # short lists per sample; appended in time order
        if began >= after and ended <= until:
            return began, ended
    return None
