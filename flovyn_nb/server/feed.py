"""The live feed of the server: one change feed on the store, fanned out to every browser.

``client.watch`` rings when any process commits to the store (its doorbell) — there is
no polling of the database per browser. It sends

- ``{"type": "run-changed", "workflowId", "status", "statusChanged"}`` for a run that
  was created, changed status or had a promise settled, and for a run whose history
  moved (an engine executes it: ``statusChanged`` is false then). For a run whose
  creation a ring told, also ``"created": true`` and its row's ``executionId``, ``kind``,
  ``createdAt`` (ISO, as ``GET runs`` says it) and ``queue``: a runs list can show the new
  row before it re-reads its page;
- ``{"type": "promise-waiting", "workflowId", "name"}`` for a promise that started waiting.

A run's progress messages (``statusChanged`` false) go out at most once per run every
``min_interval`` seconds, the last one always: a run view re-reads its run on each.

Most rings say what their commit did (:mod:`flovyn_nb.store.news`: the runs it created
or moved, the promises it created or settled): the :class:`Broadcaster` turns those into
messages at once, without opening the database (a DuckDB store is shared by taking turns
on the file, and taking it from the kernels costs 50-300 ms per read). A ring that does
not say it all (an older writer, a commit a record cannot describe, a run the feed has not
met) makes it read, once for all open streams, what can have changed: the active runs, the
newest runs and the pending promises, compared with what it knew. Reads happen only while
a stream is open, at most every ``min_interval`` seconds, and off tornado's loop (on the
door's pool); what the rings said and what the reads found meet on tornado's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flovyn_nb import client
from flovyn_nb.errors import FlovynError, UnknownWorkflow
from flovyn_nb.model import ACTIVE_STATUSES, RunInfo, RunStatus
from flovyn_nb.server.door import Door
from flovyn_nb.server.errors import ApiError
from flovyn_nb.server.shapes import iso

__all__ = ["NEWEST", "Broadcaster"]

NEWEST = 50  # newest runs read on each ring: a run born and ended between two rings shows
_KNOWN = 5000  # ended runs remembered from rings beyond this are forgotten (reads re-learn)
Message = dict[str, Any]
_CLOSED: Message = {"type": "closed"}
log = logging.getLogger("flovyn_nb.server")


class _Said(Protocol):
    """One record of a ring (``flovyn_nb.store.news.News``, seen through the client)."""

    execution_id: str
    workflow_id: str | None
    status: str | None
    promise: str | None
    promise_status: str | None
    kind: str | None
    created_at: float | None
    queue: str | None


@dataclass
class _Found:
    """What one read of the store found (on the door's pool; diffed on tornado's loop)."""

    runs: dict[str, RunInfo] = field(default_factory=dict)
    promises: set[tuple[str, str]] = field(default_factory=set)
    ended: dict[str, RunInfo] = field(default_factory=dict)  # active before, gone from runs
    exists: bool = True


class Broadcaster:
    """Turns doorbell rings into messages for every open event stream (see module doc)."""

    def __init__(self, door: Door, *, min_interval: float = 0.1) -> None:
        self.door = door
        self.min_interval = min_interval
        self._queues: set[asyncio.Queue[Message]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: client.Subscription | None = None
        # workflow id -> (status, updated_at; None when a ring told the status)
        self._runs: dict[str, tuple[RunStatus, datetime | None]] = {}
        self._promises: set[tuple[str, str]] = set()
        self._workflows: dict[str, str] = {}  # execution id -> workflow id
        self._baseline = False  # _runs/_promises describe the store as last read
        self._live: asyncio.Event | None = None  # set once the baseline is read
        self._scan: asyncio.Task[None] | None = None
        self._progress_due: dict[str, float] = {}  # workflow id -> loop time
        self._progress_held: set[str] = set()
        self._again = False
        # Rings told since a read started must win over what that read found: each ring
        # batch bumps the generation and stamps the runs it told of.
        self._generation = 0
        self._told: dict[str, int] = {}
        self.reads = 0  # reads of the store made (tests, benchmarks)

    @property
    def reading(self) -> bool:
        """Whether a read of the store is under way or due (for tests)."""
        return self._scan is not None and not self._scan.done()

    # -- streams (tornado's loop) ----------------------------------------------------------

    def open(self) -> asyncio.Queue[Message]:
        """A new stream's queue; the first one starts watching the store."""
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._queues.add(queue)
        if self._subscription is None:
            self._loop = asyncio.get_running_loop()
            self._live = asyncio.Event()
            self._subscription = client.watch(self._on_change, store=self.door.location)
            self._ring()  # the first read sets the baseline
        return queue

    async def live(self, timeout: float) -> bool:
        """Wait until the feed's baseline is read (at most ``timeout`` seconds): from then
        on every change is told. A stream says it is connected only then, so that a
        browser that acts on "connected" (starts a run, waits for its promise) is never
        told of a change the baseline swallowed. Whether the baseline is read."""
        event = self._live
        if event is None:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return event.is_set()

    def _based(self) -> None:
        self._baseline = True
        if self._live is not None:
            self._live.set()

    def close(self, queue: asyncio.Queue[Message]) -> None:
        """A stream ended; the last one stops watching (nothing reads the store then)."""
        self._queues.discard(queue)
        if not self._queues and self._subscription is not None:
            self._subscription.close()
            self._subscription = None
            self._baseline = False
            self._live = None

    def shutdown(self) -> None:
        """The server stops: end every stream."""
        for queue in list(self._queues):
            queue.put_nowait(_CLOSED)
            self.close(queue)

    def _on_change(self, change: client.Change) -> None:
        # On the feed's thread: only hand over to tornado's loop.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._heard, change)

    def _heard(self, change: client.Change) -> None:
        said = change.data if change.what == "bell" else None
        messages = self._tell(said) if isinstance(said, list) and self._baseline else None
        if messages is None:
            self._ring()  # the rings did not say it all: read
        else:
            # (Opening the store here, ahead of the sidebars' re-reads, was measured: no
            # faster on screen, and an open taken from the kernels per message.)
            self._send([m for m in messages if not self._held(m)])

    def _held(self, message: Message) -> bool:
        """Whether a run's progress message (its history moved) waits: at most one per
        run every ``min_interval`` seconds goes out, the last one always (a run view
        re-reads the run on each; a busy run commits far more often)."""
        if message["type"] != "run-changed" or message["statusChanged"]:
            return False
        assert self._loop is not None
        wid, now = message["workflowId"], self._loop.time()
        due = self._progress_due.get(wid, 0.0)
        if now >= due:
            self._progress_due[wid] = now + self.min_interval
            if len(self._progress_due) > _KNOWN:
                self._progress_due = {w: d for w, d in self._progress_due.items() if d > now}
            return False
        if wid not in self._progress_held:
            self._progress_held.add(wid)
            self._loop.call_later(due - now, self._release, wid)
        return True

    def _release(self, wid: str) -> None:
        self._progress_held.discard(wid)
        state = self._runs.get(wid)
        if state is not None and self._queues:
            message = {"type": "run-changed", "workflowId": wid, "status": state[0].value,
                       "statusChanged": False}  # fmt: skip
            if not self._held(message):
                self._send([message])

    def _send(self, messages: list[Message]) -> None:
        for message in messages:
            for queue in self._queues:
                queue.put_nowait(message)

    def _ring(self) -> None:
        if self._scan is not None and not self._scan.done():
            self._again = True  # read once more when this read ends
            return
        self._scan = asyncio.ensure_future(self._scans())

    async def _scans(self) -> None:
        while self._queues:
            self._again = False
            generation = self._generation
            active = [wid for wid, (status, _) in self._runs.items() if not status.is_terminal]
            try:
                found = await self.door.call(self._read, active)
                messages = self._compare(found, generation)
            except (FlovynError, ApiError) as error:
                # The store is busy or unusable right now: the next ring reads again.
                log.debug("flovyn_nb: live feed read failed: %s", error)
                messages = []
            except Exception:  # a bug: say it in the server log, keep the streams open
                log.exception("flovyn_nb: live feed read failed")
                messages = []
            self._send(messages)
            if not self._again:
                return
            await asyncio.sleep(self.min_interval)

    # -- what the rings said (tornado's loop) ----------------------------------------------

    def _tell(self, said: list[_Said]) -> list[Message] | None:
        """The messages for these records, the state updated; ``None`` (nothing changed)
        when one of them names a run this feed does not know: read instead."""
        named: list[tuple[str, _Said]] = []
        learnt = {r.execution_id: r.workflow_id for r in said if r.execution_id and r.workflow_id}
        created = {r.workflow_id for r in said if r.workflow_id and r.status is not None}
        for record in said:
            wid = (
                record.workflow_id
                or learnt.get(record.execution_id)
                or self._workflows.get(record.execution_id)
            )
            if wid is None or (
                record.status is None and wid not in self._runs and wid not in created
            ):
                return None
            named.append((wid, record))
        self._workflows.update(learnt)
        self._generation += 1
        changed: dict[str, bool] = {}  # workflow id -> its status changed
        waiting: list[tuple[str, str]] = []
        born: dict[str, Message] = {}  # workflow id -> the created run's row details
        for wid, record in named:
            self._told[wid] = self._generation
            if record.kind is not None and record.created_at is not None:
                born[wid] = {"created": True, "executionId": record.execution_id,
                             "kind": record.kind, "createdAt": iso(record.created_at),
                             "queue": record.queue or "default"}  # fmt: skip
            moved = False
            if record.status is not None:
                status = RunStatus(record.status)
                before = self._runs.get(wid)
                moved = before is None or before[0] is not status
                self._runs[wid] = (status, None)
                if status.is_terminal:
                    self._promises = {p for p in self._promises if p[0] != wid}
            if record.promise is not None and record.promise_status is not None:
                key = (wid, record.promise)
                if record.promise_status == "PENDING":
                    if key not in self._promises:
                        self._promises.add(key)
                        waiting.append(key)
                else:
                    self._promises.discard(key)
            changed[wid] = changed.get(wid, False) or moved
        self._forget_ended()
        messages: list[Message] = [
            {"type": "run-changed", "workflowId": wid, "status": self._runs[wid][0].value,
             "statusChanged": moved, **born.get(wid, {})}
            for wid, moved in changed.items()
        ]  # fmt: skip
        messages += [
            {"type": "promise-waiting", "workflowId": wid, "name": name} for wid, name in waiting
        ]
        return messages

    def _forget_ended(self) -> None:
        if len(self._runs) <= _KNOWN:
            return
        self._runs = {w: s for w, s in self._runs.items() if not s[0].is_terminal}
        self._workflows = {x: w for x, w in self._workflows.items() if w in self._runs}
        self._told = {w: g for w, g in self._told.items() if w in self._runs}

    # -- reading the store (the door's pool; one read at a time) ---------------------------

    def _read(self, active: list[str]) -> _Found:
        if not self.door.exists():
            return _Found(exists=False)
        self.reads += 1
        store = self.door.location
        runs = {
            r.workflow_id: r
            for r in [
                *client.list_runs(limit=NEWEST, store=store),
                *client.list_runs(status=list(ACTIVE_STATUSES), store=store),
            ]
        }
        found = _Found(
            runs, {(p.workflow_id, p.name) for p in client.pending_promises(store=store)}
        )
        # Active before and now neither active nor among the newest: it ended.
        for wid in active:
            if wid not in runs:
                with contextlib.suppress(UnknownWorkflow):
                    found.ended[wid] = client.get_run(wid, events=False, store=store)
        return found

    def _compare(self, found: _Found, generation: int) -> list[Message]:
        """The messages for what a read found (started at ``generation``); updates the
        state, except for runs a ring told of since (the read may predate it)."""
        if not found.exists:
            # No store yet: everything that appears in it will be news.
            self._runs, self._promises = {}, set()
            self._based()
            return []
        runs = {**found.ended, **found.runs}
        for wid, run in runs.items():
            self._workflows.setdefault(run.execution_id, wid)
        fresh = {wid for wid, told in self._told.items() if told > generation}
        seen: dict[str, tuple[RunStatus, datetime | None]] = {
            wid: (run.status, run.updated_at) for wid, run in runs.items() if wid not in fresh
        }
        promises = {p for p in found.promises if p[0] not in fresh}
        if not self._baseline:  # (no ring is told before the baseline: nothing is fresh)
            self._runs, self._promises = seen, promises
            self._based()
            return []

        changed: dict[str, tuple[RunStatus, bool]] = {}
        for wid, state in seen.items():
            before = self._runs.get(wid)
            if before is None or before[0] is not state[0]:
                changed[wid] = (state[0], True)
            elif before[1] is not None and before[1] != state[1]:
                changed[wid] = (state[0], True)  # a new attempt, a retry (same status)
            elif not state[0].is_terminal and runs[wid].owner is not None:
                # An engine executes it: its steps may have moved (the run row only
                # changes with the status). A run nobody executes moves only by its inbox.
                changed[wid] = (state[0], False)
        known = {p for p in self._promises if p[0] not in fresh}
        for wid, _name in known - promises:  # settled (or its run ended)
            if wid not in changed and wid in seen:
                changed[wid] = (seen[wid][0], False)

        messages: list[Message] = [
            {"type": "run-changed", "workflowId": wid, "status": status.value,
             "statusChanged": moved}
            for wid, (status, moved) in changed.items()
        ]  # fmt: skip
        messages += [
            {"type": "promise-waiting", "workflowId": wid, "name": name}
            for wid, name in sorted(promises - known)
        ]
        kept = {w: s for w, s in seen.items() if w in found.runs or not s[0].is_terminal}
        kept.update((w, s) for w, s in self._runs.items() if w in fresh)
        self._runs = kept
        self._promises = promises | {p for p in self._promises if p[0] in fresh}
        self._workflows = {x: w for x, w in self._workflows.items() if w in self._runs}
        return messages
