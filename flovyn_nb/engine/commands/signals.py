"""Signals: ``ctx.wait_for_signal`` and the delivery of buffered signals."""

from __future__ import annotations

from collections import deque
from datetime import timedelta
from typing import Any

import anyio.lowlevel

from flovyn_nb import serde
from flovyn_nb.engine.commands.base import Delivered, RunBase, iso, seconds_of
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import SignalTimeout
from flovyn_nb.history.replay import epoch_of
from flovyn_nb.model import (
    EventType,
    OperationCompleted,
    SignalReceived,
    TimerCancelled,
    TimerStarted,
)
from flovyn_nb.store import MarkSignalDelivered

E = EventType


class SignalCommands(RunBase):
    """Signals: ``ctx.wait_for_signal`` and the delivery of buffered signals."""

    async def wait_for_signal(
        self, name: str, timeout: timedelta | float | None, type_hint: Any
    ) -> Any:
        seconds = seconds_of(timeout, "signal timeout")
        index = self._next("signal")
        timer_id = f"signal-{index + 1}" if seconds is not None else None
        history = self.history
        fire_at: float | None = None
        if history is not None and timer_id is not None and timer_id in history.timer_starts:
            if timer_id in history.outcomes and history.outcomes[timer_id].type is E.TIMER_FIRED:
                raise SignalTimeout(f"no signal {name!r} arrived in time", name=name)
            fire_at = epoch_of(history.timer_starts[timer_id].payload["fireAt"])
        recorded = history.next_signal(name) if history is not None else None
        if recorded is not None:
            await anyio.lowlevel.checkpoint()
            return serde.from_json(
                recorded.payload.get("value"), type_hint, what=f"signal {name!r}"
            )
        wait = Wait(name)
        if timer_id is not None and fire_at is None:
            assert seconds is not None
            fire_at = self.host.clock.now() + seconds
            await self.commit(
                E.TIMER_STARTED, TimerStarted(timer_id=timer_id, fire_at=iso(fire_at))
            )
        entry = None
        if timer_id is not None and fire_at is not None:
            entry = self.host.deadlines.add(fire_at, lambda: self._fire_timer(timer_id, wait))
        self.signal_waits[name].append((wait, timer_id, type_hint))
        self.host.inbox_changed(self.execution_id)
        try:
            result = await self._block(wait)
        finally:
            queue = self.signal_waits.get(name)
            if queue is not None:
                self.signal_waits[name] = deque(w for w in queue if w[0] is not wait)
            if entry is not None:
                entry.cancel()
        if isinstance(result, Delivered):
            return serde.from_json(result.value, type_hint, what=f"signal {name!r}")
        raise SignalTimeout(f"no signal {name!r} arrived in time", name=name)

    def pending_signals(self, name: str) -> int:
        index = self._next("operation")
        what = f"pending_signal_count({name})"
        rec = self._match("operation", index, what, f"{what} / has_signal({name!r})")
        if rec is not None:
            return int(rec.payload["result"])
        count = len(self.buffered_signals.get(name, ()))
        # Recorded: what was buffered depends on timing, the replay must see the same.
        self.emit(E.OPERATION_COMPLETED, OperationCompleted(operation_name=what, result=count))
        return count

    def drain_signals(self, name: str, type_hint: Any) -> list[Any]:
        index = self._next("operation")
        what = f"drain_signals({name})"
        rec = self._match("operation", index, what, f"drain_signals({name!r})")
        if rec is not None:
            values = list(rec.payload["result"] or [])
        else:
            drained = self.buffered_signals.pop(name, {})
            self.delivered_signals.update(drained)
            values = list(drained.values())
            # One event that carries the values and marks them delivered, atomically.
            self.emit(
                E.OPERATION_COMPLETED,
                OperationCompleted(operation_name=what, result=values),
                intents=[MarkSignalDelivered(signal_id) for signal_id in drained],
            )
        return [serde.from_json(v, type_hint, what=f"signal {name!r}") for v in values]

    def deliver_signal(self, signal_id: str, name: str, value: Any) -> bool:
        # A scan may still see a signal whose "delivered" mark is not yet committed.
        if signal_id in self.delivered_signals:
            return False
        queue = self.signal_waits.get(name)
        if not queue:
            self.buffered_signals[name].setdefault(signal_id, value)
            return False
        self.buffered_signals.get(name, {}).pop(signal_id, None)
        self.delivered_signals.add(signal_id)
        wait, timer_id, _ = queue.popleft()
        extra = []
        if timer_id is not None:
            extra.append(TimerCancelled(timer_id=timer_id))
        self.emit(
            E.SIGNAL_RECEIVED,
            SignalReceived(signal_id=signal_id, signal_name=name, value=value),
            intents=[MarkSignalDelivered(signal_id)],
        )
        for payload in extra:
            self.emit(E.TIMER_CANCELLED, payload)
        wait.set_value(Delivered(value))
        return True
