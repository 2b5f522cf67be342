"""Flovyn's keyword spellings beside ours on the client's functions.

Flovyn's client calls ``resolve_promise(workflow_id, promise_name, value)``,
``reject_promise(workflow_id, promise_name, error)``, ``signal_workflow(
workflow_execution_id, signal_name, value)`` and ``signal_with_start_workflow(...,
signal_name, signal_value)``; ours name them ``name``, ``reason``, ``workflow_id`` and
``value``. Both spellings work; giving both for one argument is refused, naming them.
"""

from __future__ import annotations

from typing import Any

from flovyn_nb.errors import InvalidInput

__all__ = ["MISSING", "one", "pick", "required"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()  # "not passed", where None is a value a caller may pass


def pick(call: str, ours: str, our_value: Any, theirs: str, their_value: Any) -> Any:
    """The one value given for an argument spelled ``ours`` or ``theirs`` (Flovyn's).

    Returns ``MISSING`` when neither was given.

    Raises:
        InvalidInput: both spellings were given.
    """
    if our_value is not MISSING and their_value is not MISSING:
        raise InvalidInput(
            f"{call}() got both {ours}= and {theirs}= (Flovyn's name for it); pass only one"
        )
    return our_value if our_value is not MISSING else their_value


def required(call: str, ours: str, value: Any, theirs: str) -> Any:
    """``value`` unless it is ``MISSING``.

    Raises:
        InvalidInput: neither spelling was given.
    """
    if value is MISSING:
        raise InvalidInput(f"{call}() needs {ours}= (or Flovyn's {theirs}=)")
    return value


def one(call: str, ours: str, our_value: Any, theirs: str, their_value: Any) -> Any:
    """:func:`pick` then :func:`required`: the argument must be given once.

    Raises:
        InvalidInput: both spellings, or neither, were given.
    """
    return required(call, ours, pick(call, ours, our_value, theirs, their_value), theirs)
