"""What the engine does when user code misbehaves: which exceptions are the code's failure,
and values that cannot be stored.

User code runs on the engine's loop (``async def``) or hands its outcome back to it (``def``
tasks and workflows in threads). An exception that escapes an asyncio task and is not an
``Exception`` — ``KeyboardInterrupt`` and ``SystemExit`` above all — stops the whole event
loop, and with it every run of the process. So whatever user code raises is its step's
failure, except the loop's own control flow (cancellation), which passes through.

A value is only known to be storable once it has been encoded to JSON text: pydantic turns
``float("nan")`` into plain data happily, and a payload dump would even turn it into
``null``. :func:`storable` encodes the value once, up front, so that a step either records
its value faithfully or fails with :class:`UnstorableValue` naming the value — whatever the
encoder raised.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flovyn_nb import serde
from flovyn_nb.errors import InvalidInput, UnstorableValue

# Not failures of user code but control flow: a cancel scope (the engine stopping, a task
# timing out or cancelled) and a coroutine or generator being closed.
_CONTROL = (asyncio.CancelledError, GeneratorExit)


def is_code_failure(exc: BaseException) -> bool:
    """Whether ``exc``, raised out of user code, is that code's failure (to record), rather
    than the engine's control flow (to let through)."""
    if isinstance(exc, Exception):
        return True
    # A BaseExceptionGroup may carry a cancellation: leave it to the task group.
    return not isinstance(exc, (*_CONTROL, BaseExceptionGroup))


def storable(value: Any, *, what: str) -> Any:
    """``value`` as JSON data that is known to encode (see the module's docstring).

    Raises:
        UnstorableValue: the value has no JSON form; the message names ``what``.
    """
    try:
        data = serde.to_json(value, what=what)  # encodes it: refuses what JSON cannot hold
    except Exception as exc:
        raise unstorable(what, exc) from exc
    except BaseException as exc:  # e.g. a model's serializer raising SystemExit
        if not is_code_failure(exc):
            raise
        raise unstorable(what, exc) from exc
    return data


def unstorable(what: str, exc: BaseException) -> UnstorableValue:
    """The error for a value (``what``) the encoder refused with ``exc``."""
    if isinstance(exc, UnstorableValue):
        return exc
    if isinstance(exc, InvalidInput):  # serde's own words already name the value
        return UnstorableValue(str(exc), what=what)
    return UnstorableValue(
        f"{what} cannot be stored as JSON: {type(exc).__name__}: {describe(exc)}", what=what
    )


def describe(exc: BaseException) -> str:
    """``str(exc)``, even when the exception's own ``__str__`` fails."""
    try:
        return str(exc)
    except Exception:
        return f"<{type(exc).__name__} whose message could not be read>"
