"""Thread-safe rendezvous between workflow code (on an engine's asyncio loop) and the bench.

Both systems' bench workflows use these, so the start lines and counters cost the same
on either side: none of them writes anything durable.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any


def _release(futures: list[asyncio.Future[Any]], value: Any) -> None:
    for future in futures:
        if not future.done():
            future.set_result(value)


class StartLine:
    """Runs wait here (``await line.wait()``) until the bench lets them all go at once;
    ``wait()`` returns the value the bench released them with."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._waiting: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = []

    async def wait(self) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._cond:
            self._waiting.append((loop, future))
            self._cond.notify_all()
        return await future

    def release_when(
        self, count: int, deadline: float, value: Callable[[], Any] = lambda: None
    ) -> Any:
        """Block until ``count`` runs wait at the line (or raise at the ``time.monotonic()``
        ``deadline``), then release them all with ``value()``, which is returned."""
        with self._cond:
            while len(self._waiting) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self._waiting)} of {count} runs reached the line")
                self._cond.wait(remaining)
            waiting, self._waiting = self._waiting, []
        released = value()
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[Any]]] = defaultdict(list)
        for loop, future in waiting:
            by_loop[loop].append(future)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_release, futures, released)
        return released


class Counter:
    """Counts events from any thread; the bench waits for a number to be reached."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.value = 0

    def add(self, n: int = 1) -> None:
        with self._cond:
            self.value += n
            self._cond.notify_all()

    def wait_for(self, count: int, deadline: float, what: str = "events") -> None:
        with self._cond:
            while self.value < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self.value} of {count} {what}")
                self._cond.wait(remaining)
