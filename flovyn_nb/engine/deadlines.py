"""One deadline queue for timers, promise timeouts, task retries and task timeouts.

Entries fire at their deadline (read from the injected clock), not on a polling tick: the
queue sleeps until the earliest deadline and is woken early when an earlier one arrives.
Runs on the engine loop; ``add`` and ``cancel`` must be called there.

What fires usually writes to the store, which may have been let go while idle: reopening
it takes ~15 ms. So ``warm_ahead`` seconds before a deadline the queue calls ``on_warm``
(the engine reopens the file then, off the loop) and the deadline finds it open.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

from flovyn_nb.engine.clock import Clock


@dataclass(order=True)
class Deadline:
    when: float
    order: int
    callback: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)

    def cancel(self) -> None:
        self.cancelled = True


class DeadlineQueue:
    def __init__(
        self,
        clock: Clock,
        *,
        on_warm: Callable[[], None] | None = None,
        warm_ahead: float = 0.05,
    ) -> None:
        self._clock = clock
        self._on_warm = on_warm
        self._warm_ahead = warm_ahead
        self._warmed_for: float | None = None  # the deadline on_warm was last called for
        self._heap: list[Deadline] = []
        self._order = itertools.count()
        self._changed = anyio.Event()
        self._sleep_scope: anyio.CancelScope | None = None

    def __len__(self) -> int:
        return sum(1 for d in self._heap if not d.cancelled)

    def add(self, when: float, callback: Callable[[], None]) -> Deadline:
        entry = Deadline(when, next(self._order), callback)
        earliest = self._heap[0].when if self._heap else None
        heapq.heappush(self._heap, entry)
        if earliest is None or when < earliest:
            self._changed.set()
            if self._sleep_scope is not None:
                self._sleep_scope.cancel()
        return entry

    async def run(self) -> None:
        while True:
            while self._heap and self._heap[0].cancelled:
                heapq.heappop(self._heap)
            if not self._heap:
                await self._changed.wait()
                self._changed = anyio.Event()
                continue
            when = self._heap[0].when
            warm_at = when - self._warm_ahead
            warm = (
                self._on_warm is not None
                and self._warmed_for != when
                and warm_at > self._clock.now()
            )
            with anyio.CancelScope() as scope:
                self._sleep_scope = scope
                await self._clock.sleep_until(warm_at if warm else when)
            self._sleep_scope = None
            if scope.cancelled_caught:
                self._changed = anyio.Event()
                continue
            if warm and self._on_warm is not None:
                self._warmed_for = when
                self._on_warm()
                continue
            now = self._clock.now()
            while self._heap and (self._heap[0].cancelled or self._heap[0].when <= now):
                entry = heapq.heappop(self._heap)
                if not entry.cancelled:
                    entry.callback()
            # Let the code these woke run before the next wave: with many deadlines close
            # together, the next is often due already and sleeping would not yield.
            await anyio.lowlevel.checkpoint()
