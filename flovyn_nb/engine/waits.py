"""A one-shot outcome that workflow code awaits: a value, or an error to raise."""

from __future__ import annotations

from typing import Any

import anyio


class Wait:
    """Set once, from the engine loop; awaited by workflow code on the same loop."""

    __slots__ = ("_error", "_event", "_value", "label")

    def __init__(self, label: str = "") -> None:
        self.label = label
        self._event = anyio.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def set_value(self, value: Any) -> None:
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def set_error(self, error: BaseException) -> None:
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def result(self) -> Any:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value

    def outcome(self) -> Any:
        """The value of a finished wait (raises its error)."""
        if self._error is not None:
            raise self._error
        return self._value


class PromiseWait:
    """Workflow code waiting on a promise (``ctx.promise``)."""

    __slots__ = ("pending_at", "promise_id", "timeout_at", "type_hint", "wait")

    def __init__(self, wait: Wait, promise_id: str, type_hint: Any, timeout_at: float | None):
        self.wait = wait
        self.promise_id = promise_id
        self.type_hint = type_hint
        self.timeout_at = timeout_at
        # The engine's doorbell generation (Engine.bell_gen) when the store last said this
        # promise was pending; None until it has. While it is current, nothing can have
        # settled the promise unseen, so its timeout is decided without asking the store.
        self.pending_at: int | None = None
