"""Side effects recorded once (``ctx.run``), recorded time, and workflow state."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import anyio.lowlevel

from flovyn_nb import serde
from flovyn_nb.engine import logcapture
from flovyn_nb.engine.commands.base import RunBase, iso
from flovyn_nb.engine.faults import storable
from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import EventType, OperationCompleted, StateCleared, StateSet

E = EventType


class OperationCommands(RunBase):
    """Side effects recorded once (``ctx.run``), recorded time, and workflow state."""

    async def run_operation(
        self,
        name: str,
        fn: Callable[[], Any],
        type_hint: Any,
        max_attempts: int = 1,
        retry_interval: timedelta | float = 0,
    ) -> Any:
        index = self._next("operation")
        rec = self._match("operation", index, name, f"run({name!r})")
        if type_hint is Any:
            type_hint = typing.get_type_hints(fn).get("return", Any) if callable(fn) else Any
        if rec is not None:
            await anyio.lowlevel.checkpoint()
            return serde.from_json(rec.payload.get("result"), type_hint, what=f"result of {name!r}")
        if self.cancel_requested and not self._cancel_delivered:
            self._cancel_delivered = True
            raise self.cancelled_error()
        await self.outcomes_durable()
        interval = _interval(name, max_attempts, retry_interval)
        attempt = 1
        while True:
            try:
                with logcapture.step(self.scope):
                    result = fn()
                    if inspect.isawaitable(result):
                        result = await result
                break
            except Exception:
                # Flovyn's run(..., max_attempts, retry_interval): only the outcome is recorded,
                # so the failed attempts leave no event and a replay returns the record.
                if attempt >= max_attempts:
                    raise
                attempt += 1
                await self.host.sleep_until(self.host.clock.now() + interval)
        data = storable(result, what=f"result of ctx.run({name!r})")
        await self.commit(
            E.OPERATION_COMPLETED, OperationCompleted(operation_name=name, result=data)
        )
        return serde.from_json(data, type_hint, what=f"result of {name!r}")

    def current_time(self) -> datetime:
        index = self._next("operation")
        rec = self._match("operation", index, "current_time", "current_time()")
        if rec is not None:
            return datetime.fromisoformat(rec.payload["result"])
        now = iso(self.host.clock.now())
        self.emit(
            E.OPERATION_COMPLETED,
            OperationCompleted(operation_name="current_time", result=now.isoformat()),
        )
        return now

    def get_state(self, key: str, default: Any, type_hint: Any) -> Any:
        if key not in self.state:
            return default
        return serde.from_json(self.state[key], type_hint, what=f"state {key!r}")

    def set_state(self, key: str, value: Any) -> None:
        index = self._next("state")
        rec = self._match("state", index, f"set:{key}", f"set({key!r})")
        if rec is not None:
            self.state[key] = rec.payload.get("value")
            return
        data = storable(value, what=f"value of state {key!r} (ctx.set)")
        self.emit(E.STATE_SET, StateSet(key=key, value=data))
        self.state[key] = data

    def clear_state(self, key: str) -> None:
        index = self._next("state")
        rec = self._match("state", index, f"clear:{key}", f"clear({key!r})")
        self.state.pop(key, None)
        if rec is None:
            self.emit(E.STATE_CLEARED, StateCleared(key=key))

    def clear_all_state(self) -> None:
        # One STATE_CLEARED per key, in sorted order: replay matches them one by one, as if
        # the code had called clear() for each key.
        for key in sorted(self.state):
            self.clear_state(key)

    def state_keys(self) -> list[str]:
        return sorted(self.state)


def _interval(name: str, max_attempts: int, retry_interval: timedelta | float) -> float:
    """Seconds between attempts of ``ctx.run(name, ...)``, after checking both arguments."""
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise InvalidInput(
            f"max_attempts of ctx.run({name!r}) must be an int >= 1, got {max_attempts!r}"
        )
    seconds = (
        retry_interval.total_seconds()
        if isinstance(retry_interval, timedelta)
        else retry_interval
        if isinstance(retry_interval, int | float) and not isinstance(retry_interval, bool)
        else -1.0
    )
    if seconds < 0:
        raise InvalidInput(
            f"retry_interval of ctx.run({name!r}) must be a timedelta or seconds >= 0, "
            f"got {retry_interval!r}"
        )
    return float(seconds)
