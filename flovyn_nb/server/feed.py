"""The live feed of the server: one change feed on the store, fanned out to every browser.

``client.watch`` rings when any process commits to the store (its doorbell) — there is
no polling of the database per browser. On a ring the :class:`Broadcaster` reads, once
for all open streams, what can have changed: the active runs, the newest runs and the
pending promises, and compares them with what it saw last. It then sends

- ``{"type": "run-changed", "workflowId", "status", "statusChanged"}`` for a run that
  was created, changed status or had a promise settled, and for a run an engine is
  executing (its steps may have moved: ``statusChanged`` is false then);
- ``{"type": "promise-waiting", "workflowId", "name"}`` for a promise that started waiting.

Reads happen only while a stream is open, at most every ``min_interval`` seconds (a
DuckDB store is shared by taking turns on the file: each read briefly takes it from the
kernels), and off tornado's loop (on the door's pool).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any

from flovyn_nb import client
from flovyn_nb.errors import FlovynError, UnknownWorkflow
from flovyn_nb.model import ACTIVE_STATUSES, RunStatus
from flovyn_nb.server.door import Door
from flovyn_nb.server.errors import ApiError

__all__ = ["NEWEST", "Broadcaster"]

NEWEST = 50  # newest runs read on each ring: a run born and ended between two rings shows
Message = dict[str, Any]
_CLOSED: Message = {"type": "closed"}
log = logging.getLogger("flovyn_nb.server")


class Broadcaster:
    """Turns doorbell rings into messages for every open event stream (see module doc)."""

    def __init__(self, door: Door, *, min_interval: float = 0.1) -> None:
        self.door = door
        self.min_interval = min_interval
        self._queues: set[asyncio.Queue[Message]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscription: client.Subscription | None = None
        self._runs: dict[str, tuple[RunStatus, datetime]] = {}
        self._promises: set[tuple[str, str]] = set()
        self._baseline = False  # _runs/_promises describe the store as last read
        self._scan: asyncio.Task[None] | None = None
        self._again = False

    # -- streams (tornado's loop) ----------------------------------------------------------

    def open(self) -> asyncio.Queue[Message]:
        """A new stream's queue; the first one starts watching the store."""
        queue: asyncio.Queue[Message] = asyncio.Queue()
        self._queues.add(queue)
        if self._subscription is None:
            self._loop = asyncio.get_running_loop()
            self._subscription = client.watch(self._on_change, store=self.door.location)
            self._ring()  # the first read sets the baseline
        return queue

    def close(self, queue: asyncio.Queue[Message]) -> None:
        """A stream ended; the last one stops watching (nothing reads the store then)."""
        self._queues.discard(queue)
        if not self._queues and self._subscription is not None:
            self._subscription.close()
            self._subscription = None
            self._baseline = False

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
                loop.call_soon_threadsafe(self._ring)

    def _ring(self) -> None:
        if self._scan is not None and not self._scan.done():
            self._again = True  # read once more when this read ends
            return
        self._scan = asyncio.ensure_future(self._scans())

    async def _scans(self) -> None:
        while self._queues:
            self._again = False
            try:
                messages = await self.door.call(self._read)
            except (FlovynError, ApiError) as error:
                # The store is busy or unusable right now: the next ring reads again.
                log.debug("flovyn_nb: live feed read failed: %s", error)
                messages = []
            except Exception:  # a bug: say it in the server log, keep the streams open
                log.exception("flovyn_nb: live feed read failed")
                messages = []
            for message in messages:
                for queue in self._queues:
                    queue.put_nowait(message)
            if not self._again:
                return
            await asyncio.sleep(self.min_interval)

    # -- reading the store (the door's pool; one read at a time) ---------------------------

    def _read(self) -> list[Message]:
        if not self.door.exists():
            # No store yet: everything that appears in it will be news.
            self._runs, self._promises, self._baseline = {}, set(), True
            return []
        store = self.door.location
        runs = {
            r.workflow_id: r
            for r in [
                *client.list_runs(limit=NEWEST, store=store),
                *client.list_runs(status=list(ACTIVE_STATUSES), store=store),
            ]
        }
        promises = {(p.workflow_id, p.name) for p in client.pending_promises(store=store)}
        seen = {wid: (run.status, run.updated_at) for wid, run in runs.items()}
        if not self._baseline:
            self._runs, self._promises, self._baseline = seen, promises, True
            return []

        changed: dict[str, tuple[RunStatus, bool]] = {}
        for wid, state in seen.items():
            if self._runs.get(wid) != state:
                changed[wid] = (state[0], True)
            elif not state[0].is_terminal and runs[wid].owner is not None:
                # An engine executes it: its steps may have moved (the run row only
                # changes with the status). A run nobody executes moves only by its inbox.
                changed[wid] = (state[0], False)
        # Active before and now neither active nor among the newest: it ended.
        for wid, (status, _) in self._runs.items():
            if wid not in seen and not status.is_terminal:
                try:
                    run = client.get_run(wid, events=False, store=store)
                except UnknownWorkflow:
                    continue
                seen[wid] = (run.status, run.updated_at)
                changed[wid] = (run.status, run.status is not status)
        for wid, _name in self._promises - promises:  # settled (or its run ended)
            if wid not in changed and wid in seen:
                changed[wid] = (seen[wid][0], False)

        messages: list[Message] = [
            {"type": "run-changed", "workflowId": wid, "status": status.value,
             "statusChanged": moved}
            for wid, (status, moved) in changed.items()
        ]  # fmt: skip
        messages += [
            {"type": "promise-waiting", "workflowId": wid, "name": name}
            for wid, name in sorted(promises - self._promises)
        ]
        self._runs = {wid: s for wid, s in seen.items() if wid in runs or not s[0].is_terminal}
        self._promises = promises
        return messages
