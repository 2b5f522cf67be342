"""Time, injected: the engine reads time only through a :class:`Clock`.

``SystemClock`` is wall time. ``FakeClock`` (re-exported by ``flovyn_nb.testing``) is
virtual time that tests move by hand, or that jumps straight to the next deadline once the
engine has nothing else to do, so hours of timers and back-offs run in milliseconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now() >= deadline`` (may be cancelled)."""
        ...

    def attach(self, is_idle: Callable[[], bool]) -> None:
        """The engine tells the clock how to ask whether it is idle."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await anyio.sleep(delay)

    def attach(self, is_idle: Callable[[], bool]) -> None:
        pass


class FakeClock:
    """Virtual time for tests.

    Args:
        start: the virtual time to begin at (default 2030-01-01 UTC).
        autojump: when True, a deadline is reached at once as soon as the engine has been
            idle (no task running, nothing to write) for ``settle`` real seconds.
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        autojump: bool = False,
        settle: float = 0.01,
    ) -> None:
        self._now = (start or datetime(2030, 1, 1, tzinfo=UTC)).timestamp()
        self.autojump = autojump
        self.settle = settle
        self._is_idle: Callable[[], bool] = lambda: True

    def now(self) -> float:
        return self._now

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self._now, UTC)

    def advance(self, by: timedelta | float) -> None:
        """Move virtual time forward; deadlines now due fire within a millisecond or two."""
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._now += seconds

    def attach(self, is_idle: Callable[[], bool]) -> None:
        self._is_idle = is_idle

    async def sleep_until(self, deadline: float) -> None:
        idle_since: float | None = None
        while self._now < deadline:
            await anyio.sleep(0.001)
            if not self.autojump:
                continue
            if self._is_idle():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= self.settle:
                    self._now = max(self._now, deadline)
            else:
                idle_since = None
