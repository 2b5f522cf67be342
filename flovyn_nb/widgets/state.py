"""What a panel knows about one run, kept up to date cheaply.

A :class:`RunState` reads the run from the store once, then folds in what the engine's
listener queued (events and log lines of runs executing in this process). A run executed
by another process is re-read only when that process rang the store's doorbell. Only the
updater thread calls :meth:`RunState.refresh`; the listener only appends to ``queue``.
"""

from __future__ import annotations

import json
import os
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flovyn_nb import client
from flovyn_nb.client import EventRow, LogRow
from flovyn_nb.model import LogEntry, RunInfo
from flovyn_nb.widgets.streams import StreamBook
from flovyn_nb.widgets.timeline import Ev, RunView, fold

TAIL = 200  # log lines kept (and shown when expanded) per step
_DEDUP_WINDOW = 2.0  # seconds: a line seen live may also come back from a store read
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SETTLE_READ_GAP = 0.05  # batch displays re-read a settling run at most 20 times a second


def store_key(store: str | os.PathLike[str] | None) -> Path | str:
    """The store a panel reads, fixed when the panel is made: the given path, else the
    running engine's store, else the default store (all by canonical path, so that a
    panel keeps reading the same file after the engine stops; a URL stays a string)."""
    location = client.store_location(store)
    return location if "://" in location else Path(location)


def _micros(when: datetime) -> int:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Line:
    """One captured log line of a step, seen live or read back from the store."""

    step: str | None  # task execution id; None for the workflow's own code
    ts: float
    stream: str
    level: str
    message: str
    key: tuple[str | None, int, str, str]

    @property
    def is_error(self) -> bool:
        return self.stream == "stderr" or self.level in ("ERROR", "CRITICAL")

    @classmethod
    def live(cls, row: LogRow) -> Line:
        when = datetime.fromtimestamp(row.ts, UTC)  # the store keeps microseconds, likewise
        key = (row.task_execution_id, _micros(when), row.stream, row.message)
        return cls(row.task_execution_id, row.ts, row.stream, row.level, row.message, key)

    @classmethod
    def stored(cls, entry: LogEntry) -> Line:
        key = (entry.task_execution_id, _micros(entry.ts), entry.stream, entry.message)
        ts = entry.ts.timestamp()
        return cls(entry.task_execution_id, ts, entry.stream, entry.level, entry.message, key)


@dataclass
class LogTail:
    """A step's most recent log lines and its line and error counts."""

    count: int = 0
    errors: int = 0
    lines: deque[Line] = field(default_factory=lambda: deque(maxlen=TAIL))


class LogBook:
    """Log lines per step: a bounded tail and counts; lines seen twice are kept once."""

    def __init__(self) -> None:
        self.tails: dict[str | None, LogTail] = {}
        self.max_ts = 0.0
        self._recent: dict[tuple[str | None, int, str, str], float] = {}
        self.streams = StreamBook()

    def add(self, line: Line, *, live: bool = False) -> None:
        if self.streams.take(line, live=live):  # stream items: see widgets/streams.py
            self.max_ts = max(self.max_ts, line.ts)
            return
        if line.key in self._recent:
            return
        self._recent[line.key] = line.ts
        tail = self.tails.setdefault(line.step, LogTail())
        tail.count += 1
        tail.errors += line.is_error
        tail.lines.append(line)
        if line.ts > self.max_ts:
            self.max_ts = line.ts
            if len(self._recent) > 512:
                horizon = self.max_ts - _DEDUP_WINDOW
                self._recent = {k: ts for k, ts in self._recent.items() if ts >= horizon}

    def since(self) -> float | None:
        """Where the next store read starts (overlapping a little; duplicates are dropped)."""
        since = None if not self.tails and not self.streams.steps else self.max_ts - _DEDUP_WINDOW
        self.streams.begin_read(None if since is None else int(since * 1_000_000))
        return since


def _event(row: EventRow) -> Ev:
    return Ev(row.seq, row.type, json.loads(row.payload), row.ts)


class RunState:
    """One run as a panel shows it; see the module docstring for who calls what."""

    def __init__(self, workflow_id: str, store: Path | str) -> None:
        self.workflow_id = workflow_id
        self.store = store
        self.queue: deque[tuple[str, Any]] = deque()  # (what, data) from the engine listener
        self.execution_id = ""
        self.info: RunInfo | None = None
        self.events: dict[int, Ev] = {}
        self.logs = LogBook()
        self.view: RunView | None = None
        self.final = False  # ended and read back completely: nothing will change any more
        self.problem: str | None = None
        self._was_live = False
        self._needs_reload = True

    # -- reading (updater thread, or the creating thread before the panel is shared) -----

    def load(self) -> None:
        """Read the run and its logs from the store (raises UnknownWorkflow)."""
        snapshot = client.run_snapshot(
            self.workflow_id, store=self.store, logs_since=self.logs.since()
        )
        info = self.info = snapshot.info
        self.execution_id = info.execution_id
        for e in info.events:
            self.events[e.seq] = Ev(e.seq, e.type.value, e.payload, e.ts.timestamp())
        for entry in snapshot.logs:
            self.logs.add(Line.stored(entry))
        self._needs_reload = False

    def live(self) -> bool:
        return bool(self.execution_id) and client.is_live(self.execution_id, store=self.store)

    def queue_wait(self) -> client.QueueWait | None:
        """Where the run waits when no live engine holds it: its queue and whether any
        engine serves it (see client.queue_wait); a store read, asked only of active runs
        this process does not execute. None when it ended, runs here, or the read failed."""
        info, view = self.info, self.view
        if info is None or view is None or view.status.is_terminal or self.live():
            return None
        try:
            return client.queue_wait(info, store=self.store)
        except Exception:  # the reason is a hint: a failed read must not break the panel
            return None

    def refresh(self, *, bell: bool) -> None:
        """Bring the state up to date: fold queued live items, re-read when needed."""
        live = self.live()
        if self._needs_reload or (bell and not live) or (live and not self._was_live):
            self.load()
        self._was_live = live
        while self.queue:
            what, data = self.queue.popleft()
            if what == "event":
                self.events.setdefault(data.seq, _event(data))
            elif what == "log":
                self.logs.add(Line.live(data), live=True)
        self.view = self._fold()
        if self.view.status.is_terminal and not live:
            if not self.final:
                # One last read: whatever the ending process committed (late log lines,
                # the stored output) is what the panel keeps showing from now on.
                self.load()
                self.view = self._fold()
            self.final = True

    def mark_reload(self) -> None:
        self._needs_reload = True

    def _fold(self) -> RunView:
        info = self.info
        assert info is not None
        return fold(
            [self.events[seq] for seq in sorted(self.events)],
            workflow_id=info.workflow_id,
            execution_id=info.execution_id,
            kind=info.kind,
            stored_status=info.status,
            created=info.created_at.timestamp(),
            stored_output=info.output,
            stored_error=None if info.error is None else info.error.model_dump(),
        )


def wait_settled(state: RunState, timeout: float) -> RunView:
    """Re-read until the run finishes or suspends, or ``timeout`` passes (batch displays).

    Wakes on the change feed (the engine's items for runs of this process, the doorbell
    for runs elsewhere), so it returns as soon as the run settles.
    """
    import threading

    changed = threading.Event()

    def on_change(change: client.Change) -> None:
        # Until the first read tells the execution id, any run's event may be ours.
        # Log lines never settle a run: only events and the end count.
        mine = change.execution_id == state.execution_id or not state.execution_id
        if change.from_elsewhere or (mine and change.what != "log"):
            changed.set()

    deadline = time.monotonic() + timeout
    with client.watch(on_change, store=state.store):
        while True:
            changed.clear()
            state.mark_reload()
            state.refresh(bell=False)
            assert state.view is not None
            if state.view.settled or time.monotonic() >= deadline:
                return state.view
            time.sleep(_SETTLE_READ_GAP)  # a burst of events costs one read, not one each
            changed.wait(max(deadline - time.monotonic(), 0.0))
