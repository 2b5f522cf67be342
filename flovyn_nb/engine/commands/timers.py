"""Durable timers: ``ctx.sleep`` and ``ctx.sleep_until``."""

from __future__ import annotations

from datetime import datetime, timedelta

import anyio.lowlevel

from flovyn_nb.engine.commands.base import RunBase, iso, seconds_of
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import InvalidInput, WorkflowCancelled
from flovyn_nb.history.replay import epoch_of
from flovyn_nb.model import EventType, RunStatus, TimerCancelled, TimerStarted

E = EventType


class TimerCommands(RunBase):
    """Durable timers: ``ctx.sleep`` and ``ctx.sleep_until``."""

    async def sleep(self, duration: timedelta | float) -> None:
        seconds = seconds_of(duration, "sleep duration")
        assert seconds is not None
        await self._timer(self.host.clock.now() + seconds)

    async def sleep_until(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise InvalidInput("sleep_until needs a timezone-aware datetime (e.g. tzinfo=UTC)")
        await self._timer(when.timestamp())

    async def _timer(self, fire_at: float) -> None:
        index = self._next("timer")
        timer_id = f"timer-{index + 1}"
        rec = self._match("timer", index, None, "sleep()")
        wait = Wait(timer_id)
        if rec is not None:
            assert self.history is not None
            if timer_id in self.history.outcomes:
                await anyio.lowlevel.checkpoint()
                return
            fire_at = epoch_of(rec.payload["fireAt"]) or fire_at
            self.move(RunStatus.WAITING)
        else:
            # Armed at once: the writer commits in order, and whatever follows the sleep
            # waits for earlier outcomes to be durable before any side effect.
            self.emit(
                E.TIMER_STARTED,
                TimerStarted(timer_id=timer_id, fire_at=iso(fire_at)),
                status=RunStatus.WAITING,
            )
        entry = self.host.deadlines.add(fire_at, lambda: self._fire_timer(timer_id, wait))
        try:
            await self._block(wait)
        except WorkflowCancelled:
            self.emit(E.TIMER_CANCELLED, TimerCancelled(timer_id=timer_id))
            raise
        finally:
            entry.cancel()
