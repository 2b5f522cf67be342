"""Other engines: the doorbell (commits by other processes), peers on this host (a dead
one's runs are taken over at once), and the heartbeat (which also claims the runs of
engines that died elsewhere)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio

from flovyn_nb.engine import ownership
from flovyn_nb.engine.inbox import Inbox
from flovyn_nb.engine.ownership import pid_alive
from flovyn_nb.engine.threads import offload
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import StoreLocked
from flovyn_nb.store import EngineRow, Heartbeat


@runtime_checkable
class _Announcing(Protocol):
    """A doorbell watcher that hears rings on a thread of its own (PostgreSQL's LISTEN)
    and can say so at once."""

    def on_ring(self, callback: Callable[[], None]) -> Callable[[], None]: ...


class _Wake:
    """The bell watcher's pause between looks: ``poll_interval``, cut short by a ring a
    watcher announces (then a commit elsewhere is seen at once, not at the next look)."""

    def __init__(self, watchers: list[object]) -> None:
        self._loop = asyncio.get_running_loop()
        self._event = anyio.Event()
        self._stops = [w.on_ring(self._ring) for w in watchers if isinstance(w, _Announcing)]

    def _ring(self) -> None:  # on the watcher's thread
        with contextlib.suppress(RuntimeError):  # the loop closed: nothing waits any more
            self._loop.call_soon_threadsafe(self._set)

    def _set(self) -> None:
        self._event.set()

    async def pause(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._event.wait()
        # A ring counted before this point is seen by the look that follows: the watchers
        # count before they announce.
        self._event = anyio.Event()

    def close(self) -> None:
        for stop in self._stops:
            stop()


class Peers(Inbox):
    """The doorbell, the engines on this host, and the heartbeat."""

    def _note_peers(self, engines: list[EngineRow]) -> None:
        self._peers = {e.id: e.pid for e in engines if e.id != self.id and e.host == ownership.HOST}

    async def _refresh_peers(self) -> None:
        # Every engine not marked stopped, dead ones included: one that died before this
        # look is then found by _check_peers at once, like one that dies later.
        engines = await offload(self.store.live_engines)
        self._note_peers(engines)

    def _check_peers(self) -> None:
        """A same-host engine whose process is gone is known at once: take its runs over."""
        dead = [engine_id for engine_id, pid in self._peers.items() if not pid_alive(pid)]
        if dead:
            for engine_id in dead:
                del self._peers[engine_id]
            self.start_soon(self._recover)

    def _observe_bell(self) -> bool:
        """Look at the doorbell (a ``stat``); if another process committed since the last
        look, count it and scan every run's inbox. Returns whether it had."""
        assert self._bell_watcher is not None
        if not self._bell_watcher.rung_by_others():
            return False
        self.bell_gen += 1
        self.remote.look_soon()  # outcomes of queued tasks and of children run elsewhere
        self._wake_finish_waiters(None)  # runs finished elsewhere may be awaited here
        self._dirty.update(self.runs)
        if self._dirty:
            self._inbox_event.set()
        return True

    async def _watch_bell(self) -> None:
        assert self._work_watcher is not None and self._slot_watcher is not None
        wake = _Wake([self._bell_watcher, self._work_watcher, self._slot_watcher])
        try:
            await self._look_at_bells(wake)
        finally:
            wake.close()

    async def _look_at_bells(self, wake: _Wake) -> None:
        last_refresh = 0.0
        refresh_due = False
        while True:
            await wake.pause(self.poll_interval)
            self._check_peers()
            assert self._work_watcher is not None and self._slot_watcher is not None
            # New runs may wait for this engine; or a slot of a queue whose runs it was
            # refused for want of one is free.
            slot_freed = self._slot_watcher.rung_by_others()
            new_work = self._work_watcher.rung_by_others()
            if new_work:
                self.scheduler.poke()  # schedules may have changed, too
            if new_work or (slot_freed and self._backlog):
                self.want_claim()
            self._observe_bell()
            # A new engine may have registered (its commit rings the bell in its own way):
            # look at most twice a second, but put the look off rather than drop it, or a
            # peer that registered and went quiet within the half second would never be
            # watched (its death would then wait for the heartbeat). Not on every ring: a
            # look is a read, which takes the file from a busy writer (a few engines
            # looking at each of its commits starved it; see store/duckdb/bell.py).
            assert self._bell_watcher is not None
            refresh_due = refresh_due or self._bell_watcher.engines_may_have_joined()
            if refresh_due and time.monotonic() - last_refresh > 0.5:
                refresh_due = False
                last_refresh = time.monotonic()
                self.start_soon(self._refresh_peers)

    def want_claim(self) -> None:
        """Claim soon (recovery.py)."""
        raise NotImplementedError

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_interval)
            try:
                await self.writer.commit(Write(intents=[Heartbeat(self.id, self.clock.now())]))
                await self._recover()
            except StoreLocked:
                continue  # the writer says so (Engine.store_blocked); beat again next time
