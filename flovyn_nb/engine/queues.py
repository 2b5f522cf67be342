"""Queues: which runs an engine claims (Flovyn's ``queue=``).

A run waits in one named queue (``"default"`` unless started with ``queue=``); an engine
claims only the runs of the queues it serves (a kernel's engine serves ``"default"``, a
``flovyn-nb worker`` the ones it is given). A queue's limits (``fn.queue(...)``) are kept
in the store and applied by the claim itself, in one statement, so engines racing for
runs never exceed them.
"""

from __future__ import annotations

from collections.abc import Sequence

from flovyn_nb.errors import InvalidInput
from flovyn_nb.store.catalog import DEFAULT_QUEUE


def check_queue_name(name: object) -> str:
    """``name`` if it is a usable queue name.

    Raises:
        InvalidInput: not a non-empty string without surrounding spaces.
    """
    if not isinstance(name, str) or not name or name.strip() != name:
        raise InvalidInput(
            f"a queue name must be a non-empty string without surrounding spaces, got {name!r}"
        )
    return name


def queue_names(queues: Sequence[str] | str | None) -> list[str]:
    """The queues an engine serves: ``["default"]`` when none are named.

    Raises:
        InvalidInput: a name is not usable, or a single string was given for the list.
    """
    if queues is None:
        return [DEFAULT_QUEUE]
    if isinstance(queues, str):
        raise InvalidInput(f"queues must be a list of names, e.g. queues=[{queues!r}]")
    names = [check_queue_name(q) for q in queues]
    if not names:
        raise InvalidInput("queues must name at least one queue")
    return list(dict.fromkeys(names))
