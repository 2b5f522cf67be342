"""What the history functions read: one recorded event, and which events are commands.

Both the replay index and the fold number a run's steps the same way (1-based, in the
order the code issued them), so a ``DeterminismViolation`` "at step 3", the panel and
``flovyn-nb show`` all mean the same step. That rule lives here, once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flovyn_nb.model import EventInfo
from flovyn_nb.model import EventType as E

JSON = Any
"""A JSON value: dict, list, str, int, float, bool or None."""


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded event of a run: what the fold reads (``ts`` in epoch seconds).

    The engine's replay records (:class:`~flovyn_nb.history.replay.Recorded`) are events
    too; events read through the client (:class:`~flovyn_nb.model.EventInfo`) convert
    with :meth:`from_info` or :func:`events_of`.
    """

    seq: int
    type: E
    payload: dict[str, JSON]
    ts: float

    @classmethod
    def from_info(cls, info: EventInfo) -> Event:
        """The event of an :class:`EventInfo` (as ``client.get_run`` returns them)."""
        return cls(info.seq, info.type, info.payload, info.ts.timestamp())


def events_of(infos: Iterable[EventInfo]) -> list[Event]:
    """The events of a run read through the client (``client.get_run(...).events``)."""
    return [Event.from_info(info) for info in infos]


# command family -> the event types that open a command of that family
COMMAND_TYPES: dict[str, tuple[E, ...]] = {
    "task": (E.TASK_SCHEDULED,),
    "timer": (E.TIMER_STARTED,),
    "promise": (E.PROMISE_CREATED,),
    "child": (E.CHILD_WORKFLOW_INITIATED,),
    "operation": (E.OPERATION_COMPLETED,),
    "state": (E.STATE_SET, E.STATE_CLEARED),
}
_FAMILY = {t: family for family, types in COMMAND_TYPES.items() for t in types}
SLEEP_TIMER_PREFIX = "timer-"


def command_family(kind: E, payload: dict[str, JSON]) -> str | None:
    """The command family an event opens, or None when it opens no command.

    Internal timers (the timeout of a signal wait, ``signal-N``) belong to their wait, not
    to a ``sleep()``: they are not commands and get no step number.
    """
    family = _FAMILY.get(kind)
    if family == "timer" and not str(payload.get("timerId", "")).startswith(SLEEP_TIMER_PREFIX):
        return None
    return family


def epoch(value: JSON) -> float | None:
    """Epoch seconds of an ISO timestamp from a payload (None when absent or unreadable)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
