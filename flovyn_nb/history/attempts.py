"""Attempts of a run: which recorded events a retry or a fork keeps, and where they cut.

A retry appends a ``WORKFLOW_RETRIED`` marker to the same history; a fork copies the kept
events into a new run. Both cut a history at a sequence number ``F`` (the first event of
the step that runs again) and keep:

- every event before ``F``;
- later events of a step opened before ``F`` whose outcome there was a success (a task
  that completed while the next steps were issued): its outcome is reused, not run again;
- received signals (what arrived from outside is input, not an outcome).

Everything else from ``F`` on (the failed step, what followed, the failure or the
cancellation itself) is superseded: the code registered now issues it again. Replay and
the fold apply the markers with :func:`effective`, so ``History`` sees the current
attempt only, and the fold shows the earlier ones beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from flovyn_nb.history.events import JSON, Event, command_family
from flovyn_nb.model import EventType as E

__all__ = [
    "Cut",
    "attempt_of",
    "cut",
    "describe",
    "effective",
    "retry_point",
    "step_point",
    "target_of",
]

Ev = TypeVar("Ev", bound=Event)

# Outcomes that end a step well: a step opened before the cut keeps them.
_SUCCESS = frozenset(
    {E.TASK_COMPLETED, E.TIMER_FIRED, E.PROMISE_RESOLVED, E.CHILD_WORKFLOW_COMPLETED}
)
# Outcomes that make a step "the failed step" of a run a retry starts again from.
_FAILURE = frozenset(
    {
        E.TASK_FAILED,
        E.TASK_CANCELLED,
        E.CHILD_WORKFLOW_FAILED,
        E.PROMISE_REJECTED,
        E.PROMISE_TIMEOUT,
        E.TIMER_CANCELLED,
    }
)
_ENDS = frozenset({E.WORKFLOW_COMPLETED, E.WORKFLOW_EXECUTION_FAILED, E.WORKFLOW_CANCELLED})


@dataclass(frozen=True, slots=True)
class Cut:
    """Where a retry or fork cuts a history.

    ``seq``: the first superseded event; ``step``: the 1-based number of the step that
    runs again (None: no step does, the code after the last step runs again); ``label``:
    that step as users see it (``schedule(task 'fetch')``); ``child``: the child
    workflow's execution id when the failed step is a child run that is retried too.
    """

    seq: int
    step: int | None
    label: str
    child: str | None = None


def describe(rec: Event) -> str:
    """The command an event opens, as the code would issue it (``schedule(task 'x')``)."""
    p = rec.payload
    match rec.type:
        case E.TASK_SCHEDULED:
            return f"schedule(task {p['taskKind']!r})"
        case E.TIMER_STARTED:
            return "sleep()"
        case E.PROMISE_CREATED:
            return f"promise({p['promiseName']!r})"
        case E.CHILD_WORKFLOW_INITIATED:
            return f"schedule_workflow({p['kind']!r})"
        case E.OPERATION_COMPLETED:
            return f"run({p['operationName']!r})"
        case E.STATE_SET:
            return f"set({p['key']!r})"
        case E.STATE_CLEARED:
            return f"clear({p['key']!r})"
        case _:
            return rec.type.value


def target_of(ev: Event) -> str | None:
    """The task, timer, promise or child an event is about (None: the run itself)."""
    p = ev.payload
    for key in ("taskExecutionId", "timerId", "promiseId", "childExecutionId"):
        value = p.get(key)
        if isinstance(value, str):
            return value
    return None


def cut(events: Sequence[Ev], from_seq: int) -> list[Ev]:
    """The events a cut at ``from_seq`` keeps (see the module docs), in order."""
    opened: set[str] = set()
    for ev in events:
        if ev.seq >= from_seq:
            break
        target = target_of(ev)
        if target is not None:
            opened.add(target)
    # The last word on each earlier step within the superseded part.
    final: dict[str, E] = {}
    for ev in events:
        target = target_of(ev)
        if (
            ev.seq >= from_seq
            and target is not None
            and target in opened
            and (ev.type in _SUCCESS or ev.type in _FAILURE)
        ):
            final[target] = ev.type
    kept: list[Ev] = []
    for ev in events:
        if ev.seq < from_seq or ev.type is E.SIGNAL_RECEIVED:
            kept.append(ev)
            continue
        target = target_of(ev)
        if target is not None and target in opened and final.get(target) in _SUCCESS:
            kept.append(ev)
    return kept


def effective(events: Sequence[Ev]) -> list[Ev]:
    """The events of the current attempt: every ``WORKFLOW_RETRIED`` marker applied (the
    markers themselves are left out). Linear when the run was never retried."""
    if not any(ev.type is E.WORKFLOW_RETRIED for ev in events):
        return list(events)
    current: list[Ev] = []
    for ev in events:
        if ev.type is E.WORKFLOW_RETRIED:
            current = cut(current, _int(ev.payload.get("fromSeq"), ev.seq))
        else:
            current.append(ev)
    return current


def attempt_of(events: Sequence[Event]) -> int:
    """The run's attempt number: 1, plus one per retry."""
    return 1 + sum(1 for ev in events if ev.type is E.WORKFLOW_RETRIED)


def _steps(events: Sequence[Ev]) -> list[tuple[int, Ev]]:
    """(number, opening event) of every step, numbered as replay and the fold do."""
    steps: list[tuple[int, Ev]] = []
    for ev in events:
        if command_family(ev.type, ev.payload) is not None:
            steps.append((len(steps) + 1, ev))
    return steps


def retry_point(events: Sequence[Ev]) -> Cut:
    """Where a retry of an ended run starts again, from its current attempt's events.

    The first step (in issue order) whose outcome was a failure runs again, with what
    followed; a child run that failed is retried itself and its step waits for it again.
    When no step failed (the workflow's own code raised, or it was cancelled), the run
    starts again from its cancellation or from its end: every step is reused.
    """
    outcomes: dict[str, Ev] = {}
    for ev in events:
        target = target_of(ev)
        if target is not None and (ev.type in _FAILURE or ev.type in _SUCCESS):
            outcomes.setdefault(target, ev)
    end = next((ev.seq for ev in events if ev.type in _ENDS), None)
    cancel = next((ev.seq for ev in events if ev.type is E.CANCELLATION_REQUESTED), None)
    last = (events[-1].seq + 1) if events else 1
    stop = min(s for s in (end, cancel, last) if s is not None)
    for number, opening in _steps(events):
        target = target_of(opening)
        outcome = outcomes.get(target) if target is not None else None
        if outcome is None or outcome.type not in _FAILURE:
            continue
        if opening.seq >= stop:
            break
        if outcome.type is E.CHILD_WORKFLOW_FAILED:
            # The child run is retried too; its step keeps its place and waits again.
            return Cut(outcome.seq, number, describe(opening), child=target)
        return Cut(opening.seq, number, describe(opening))
    return Cut(stop, None, "the cancellation" if stop == cancel else "the workflow's code")


def step_point(events: Sequence[Ev], step: int | str) -> Cut:
    """Where a fork from ``step`` (1-based number, or a name's first occurrence) cuts.

    Raises:
        LookupError: no such step (the message says which steps there are).
    """
    steps = _steps(events)
    if isinstance(step, int) and not isinstance(step, bool):
        if not 1 <= step <= len(steps):
            raise LookupError(
                f"step {step} is out of range: the run has {len(steps)} step"
                f"{'' if len(steps) == 1 else 's'} (number them from 1)"
            )
        number, opening = steps[step - 1]
        return Cut(opening.seq, number, describe(opening))
    for number, opening in steps:
        if step in _names(opening.payload):
            return Cut(opening.seq, number, describe(opening))
    names = sorted({n for _, ev in steps for n in _names(ev.payload)[:1]})
    raise LookupError(
        f"the run has no step named {step!r}"
        + (f"; its steps are named {', '.join(map(repr, names))}" if names else "")
    )


def _names(p: dict[str, JSON]) -> tuple[str, ...]:
    for key in ("taskKind", "promiseName", "kind", "operationName", "key", "timerId"):
        value = p.get(key)
        if isinstance(value, str):
            return (value,)
    return ()


def _int(value: JSON, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
