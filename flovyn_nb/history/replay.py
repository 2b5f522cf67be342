"""A recorded history, indexed for replay in one pass (resume cost is linear in length).

A retried run's history holds its earlier attempts too: the ``WORKFLOW_RETRIED`` markers
are applied first (:func:`flovyn_nb.history.attempts.effective`), so replay sees the
current attempt only; steps are numbered over it.

Commands are matched per type and position: the Nth ``schedule`` call of the code is the
Nth ``TASK_SCHEDULED`` of the history, and so on. Each command is also checked by its
identifying field (task kind, promise name, child kind, operation name, state key); a
mismatch, or code that goes past history while recorded commands are still unmatched, is
a :class:`DeterminismViolation` naming the step, what history says and what the code did.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from flovyn_nb.errors import DeterminismViolation
from flovyn_nb.history.attempts import attempt_of, describe, effective
from flovyn_nb.history.events import COMMAND_TYPES, Event, command_family
from flovyn_nb.model import EventType as E

__all__ = ["COMMAND_TYPES", "History", "Recorded", "describe", "describe_event", "epoch_of"]


@dataclass(frozen=True, slots=True)
class Recorded(Event):
    """An event of a history being replayed, with its step number (0 before any command)."""

    step: int  # 1-based position among all commands of the history


describe_event = describe


class History:
    def __init__(self, workflow_id: str, events: list[tuple[int, str, dict[str, Any], float]]):
        self.workflow_id = workflow_id
        self.commands: dict[str, list[Recorded]] = defaultdict(list)
        self.outcomes: dict[str, Recorded] = {}  # task/promise/child/timer id -> final event
        self.task_attempts: dict[str, int] = defaultdict(int)
        self.task_retry_at: dict[str, float] = {}
        self.signals: dict[str, deque[Recorded]] = defaultdict(deque)
        self.timer_starts: dict[str, Recorded] = {}
        self.cancel_requested = False
        self.cancel_reason = ""  # as recorded in CANCELLATION_REQUESTED
        self.ended: Recorded | None = None  # the terminal event, if the run already ended
        self.patches: set[str] = set()  # ctx.patched() ids this run recorded taking
        self.last_seq = events[-1][0] if events else 0  # next_seq follows every attempt's
        self._unmatched = 0
        self._used: dict[str, int] = defaultdict(int)
        rows: list[tuple[int, str, dict[str, Any], float]] = events
        self.attempt = 1
        if any(row[1] == E.WORKFLOW_RETRIED for row in events):
            every = [Event(seq, E(kind), payload, ts) for seq, kind, payload, ts in events]
            self.attempt = attempt_of(every)
            rows = [(ev.seq, ev.type, ev.payload, ev.ts) for ev in effective(every)]
        started = events[0][2] if events and events[0][1] == E.WORKFLOW_STARTED else {}
        # A fork replays its origin's ctx.random() values: it seeds from the origin's id.
        seed_from = started.get("seedFrom")
        self.seed_from: str | None = seed_from if isinstance(seed_from, str) else None
        step = 0
        for seq, type_name, payload, ts in rows:
            kind = E(type_name)
            family = command_family(kind, payload)
            if family is not None:
                step += 1
            rec = Recorded(seq, kind, payload, ts, step)
            if kind is E.TIMER_STARTED:
                self.timer_starts[payload["timerId"]] = rec
            if family is not None:
                self.commands[family].append(rec)
                self._unmatched += 1
            self._index_outcome(rec)

    def _index_outcome(self, rec: Recorded) -> None:
        p = rec.payload
        match rec.type:
            case E.TASK_STARTED:
                self.task_attempts[p["taskExecutionId"]] = p["attempt"]
            case E.TASK_RETRY_SCHEDULED:
                self.task_attempts[p["taskExecutionId"]] = p["attempt"]
                self.task_retry_at[p["taskExecutionId"]] = _epoch(p["nextAttemptAt"])
            case E.TASK_COMPLETED | E.TASK_FAILED | E.TASK_CANCELLED:
                self.outcomes[p["taskExecutionId"]] = rec
            case E.TIMER_FIRED | E.TIMER_CANCELLED:
                self.outcomes[p["timerId"]] = rec
            case E.PROMISE_RESOLVED | E.PROMISE_REJECTED | E.PROMISE_TIMEOUT:
                self.outcomes[p["promiseId"]] = rec
            case E.CHILD_WORKFLOW_COMPLETED | E.CHILD_WORKFLOW_FAILED:
                self.outcomes[p["childExecutionId"]] = rec
            case E.SIGNAL_RECEIVED:
                self.signals[p["signalName"]].append(rec)
            case E.CANCELLATION_REQUESTED:
                self.cancel_requested = True
                self.cancel_reason = str(p.get("reason") or "")
            case E.PATCH_MARKER:
                self.patches.add(str(p["patchId"]))
            case E.WORKFLOW_COMPLETED | E.WORKFLOW_EXECUTION_FAILED | E.WORKFLOW_CANCELLED:
                self.ended = rec
            case _:
                pass

    @property
    def replaying(self) -> bool:
        """True while recorded commands are still waiting for the code to re-issue them."""
        return self._unmatched > 0

    def match(self, family: str, index: int, identity: str | None, issued: str) -> Recorded | None:
        """The recorded command for the code's ``index``-th command of ``family`` (0-based).

        Returns None when the code has gone past history (a new command).

        Raises:
            DeterminismViolation: history holds another command at that position, or the
                code issues a new command while recorded ones are still unmatched.
        """
        recorded = self.commands.get(family, [])
        if index < len(recorded):
            rec = recorded[index]
            if identity is not None and _identity(rec) != identity:
                self._violation(rec.step, describe(rec), issued)
            if family != "operation":
                # Commands are recorded when issued, so history's order is the code's order.
                # (ctx.run records on completion, so it may legitimately come later.)
                earlier = self.first_unmatched(ordered_only=True)
                if earlier is not None and earlier.step < rec.step:
                    self._violation(earlier.step, describe(earlier), issued)
            self._used[family] += 1
            self._unmatched -= 1
            return rec
        if self._unmatched > 0:
            first = self.first_unmatched()
            assert first is not None
            self._violation(first.step, describe(first), issued)
        return None

    def first_unmatched(self, *, ordered_only: bool = False) -> Recorded | None:
        pending = [
            recs[self._used[family]]
            for family, recs in self.commands.items()
            if self._used[family] < len(recs) and not (ordered_only and family == "operation")
        ]
        return min(pending, key=lambda r: r.step) if pending else None

    def check_complete(self, ending: str) -> None:
        """The code finished: every recorded command must have been re-issued."""
        first = self.first_unmatched()
        if first is not None:
            self._violation(first.step, describe(first), ending)

    def next_signal(self, name: str) -> Recorded | None:
        queue = self.signals.get(name)
        return queue.popleft() if queue else None

    def _violation(self, step: int, recorded: str, issued: str) -> None:
        raise DeterminismViolation(
            f"workflow {self.workflow_id!r} is not deterministic: at step {step} history "
            f"recorded {recorded}, but the code now issued {issued}. The workflow's code "
            "changed while this run was in flight, or it branches on something that is not "
            "recorded (time, randomness, files): use ctx.current_time(), ctx.random() and "
            "ctx.run() for those.",
            workflow_id=self.workflow_id,
            step=step,
            recorded=recorded,
            issued=issued,
        )


def _identity(rec: Recorded) -> str | None:
    p = rec.payload
    match rec.type:
        case E.TASK_SCHEDULED:
            return str(p["taskKind"])
        case E.PROMISE_CREATED:
            return str(p["promiseName"])
        case E.CHILD_WORKFLOW_INITIATED:
            return str(p["kind"])
        case E.OPERATION_COMPLETED:
            return str(p["operationName"])
        case E.STATE_SET:
            return f"set:{p['key']}"
        case E.STATE_CLEARED:
            return f"clear:{p['key']}"
        case _:
            return None


def _epoch(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text).timestamp()


def epoch_of(text: str | None) -> float | None:
    return None if text is None else _epoch(text)
