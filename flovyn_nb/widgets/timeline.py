"""A run's history as a panel shows it: steps (timeline rows), pending promises, the run's
status, result or error. Pure functions of the events: no I/O.

What the events mean is :func:`flovyn_nb.history.fold`'s business; this module only picks
what a panel shows from it, words it (details, deadline labels, ``fetch #2``) and lets the
stored run row have the last word on how a run ended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flovyn_nb.history.events import Event
from flovyn_nb.history.fold import fold as fold_history
from flovyn_nb.history.folded import FoldedRun, StepKind, StepStatus
from flovyn_nb.history.folded import Step as FoldedStep
from flovyn_nb.model import EventType, RunStatus

__all__ = ["Ev", "RunView", "Step", "fold", "preview"]

JSON = Any
ACTIVE_STEP = {status.value for status in StepStatus if status.active}
_TYPES = {t.value: t for t in EventType}


@dataclass(frozen=True, slots=True)
class Ev:
    """One event, whether it came from the store or live from the engine."""

    seq: int
    type: str
    payload: dict[str, JSON]
    ts: float


@dataclass
class Step:
    """One line of a panel's timeline: a task with its attempts, a timer, a promise, ..."""

    key: str  # task execution id, "timer:<id>", "promise:<name>", "child:<id>", ...
    kind: str  # task | timer | promise | child | signal | operation
    name: str
    status: str
    start: float
    end: float | None = None
    attempts: int = 0
    max_attempts: int = 0
    deadline: float | None = None
    deadline_label: str = ""
    detail: str = ""
    error: dict[str, JSON] | None = None
    schema: JSON = None
    number: int | None = None  # the step's 1-based position (fn.step_record, show)
    # Every attempt of a task: number, status, start, end, error ("type: message").
    attempt_list: list[dict[str, JSON]] = field(default_factory=list)
    child_workflow_id: str | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STEP


@dataclass
class RunView:
    """Everything a panel shows of one run, built from its events and its stored row."""

    workflow_id: str
    execution_id: str
    kind: str
    status: RunStatus
    created: float
    ended: float | None = None
    output: JSON = None
    has_output: bool = False
    error: dict[str, JSON] | None = None
    cancel_requested: bool = False
    steps: list[Step] = field(default_factory=list)
    # Retries and forks: where this run came from, one line each (see history.attempts)
    origin: list[str] = field(default_factory=list)
    source_hash: str | None = None  # of the workflow's code the run started with

    @property
    def pending_promises(self) -> list[Step]:
        return [s for s in self.steps if s.kind == "promise" and s.status == "PENDING"]

    @property
    def settled(self) -> bool:
        """Finished, or suspended with nothing running (what batch displays wait for)."""
        if self.status.is_terminal:
            return True
        return self.status is RunStatus.WAITING and not any(
            s.kind == "task" and s.active for s in self.steps
        )


def preview(value: JSON, limit: int = 200) -> str:
    """Compact JSON text of a value, cut to ``limit`` characters."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fold(
    events: list[Ev],
    *,
    workflow_id: str,
    execution_id: str,
    kind: str,
    stored_status: RunStatus,
    created: float,
    stored_output: JSON = None,
    stored_error: dict[str, JSON] | None = None,
) -> RunView:
    """Build the view of a run from its events (in ``seq`` order) and its stored row."""
    folded = fold_history(
        Event(ev.seq, _TYPES[ev.type], ev.payload, ev.ts)
        for ev in events
        if ev.type in _TYPES  # an event type of a newer version: not ours to show
    )
    view = RunView(workflow_id, execution_id, kind, stored_status, created)
    if folded.started_at is not None:
        view.created = min(view.created, folded.started_at)
    view.ended = folded.ended_at
    if folded.status is RunStatus.COMPLETED:
        view.output, view.has_output = folded.output, True
    view.error = None if folded.error is None else folded.error.as_dict()
    view.cancel_requested = folded.cancel_requested
    view.origin = _origin(folded)
    view.source_hash = folded.source_hash
    # State changes are recorded steps, but not timeline rows.
    view.steps = [_step(s) for s in folded.steps if s.kind is not StepKind.STATE]

    status = folded.status
    if status is RunStatus.PENDING or stored_status.is_terminal:
        # No history yet (PENDING), or the row already says how the run ended.
        status = stored_status
    view.status = status
    if status is RunStatus.COMPLETED and not view.has_output and stored_output is not None:
        view.output, view.has_output = stored_output, True
    if status is RunStatus.FAILED and view.error is None:
        view.error = stored_error
    if status.is_terminal:
        for step in view.steps:
            if step.active:  # the run ended around it (cancelled, failed elsewhere)
                step.status = "CANCELLED" if status is RunStatus.CANCELLED else "ABANDONED"
                step.deadline = None
                step.end = step.end or view.ended
    return view


def _origin(folded: FoldedRun) -> list[str]:
    """One line per earlier attempt (how it ended, from which step the next ran again),
    and the run a fork came from."""
    lines = []
    if folded.forked_from is not None:
        lines.append(f"forked from {folded.forked_from} at step {folded.from_step}")
    for earlier in folded.earlier:
        failed = next((s for s in earlier.steps if s.number == earlier.from_step), None)
        again = f"step {earlier.from_step} ({failed.label})" if failed else "its last step"
        why = f": {earlier.error.type}: {earlier.error.message}" if earlier.error else ""
        lines.append(
            f"attempt {earlier.number} {earlier.status.value.lower()}{why}; "
            f"attempt {earlier.number + 1} ran again from {again}"
        )
    return lines


def _step(s: FoldedStep) -> Step:
    last = s.attempts[-1] if s.attempts else None
    detail, label, error = "", "", None
    match s.kind:
        case StepKind.TASK:
            if last is not None:
                # The label of the last deadline set, even once the step is over.
                if last.retry_at is not None:
                    label = "retries"
                elif last.deadline is not None:
                    label = "times out"
            errors = [a.error for a in s.attempts if a.error is not None]
            # The latest failure stays on the row while the step has not succeeded; once
            # a later attempt did, the row shows its result (the attempts list the rest).
            succeeded = s.status is StepStatus.COMPLETED
            error = errors[-1].as_dict() if errors and not succeeded else None
            if s.status is StepStatus.COMPLETED:
                detail = preview(s.value, 120)
                if isinstance(s.cached_from, dict):  # @task(cache=True): nothing ran
                    detail += f" (reused from {s.cached_from.get('workflowId')})"
            elif s.status is StepStatus.FAILED and last is not None and last.timed_out:
                detail = "timed out"
        case StepKind.TIMER:
            label = "fires"
        case StepKind.PROMISE:
            label = "times out"
            if s.status is StepStatus.RESOLVED:
                detail = preview(s.value, 120) + (f" (by {s.resolved_by})" if s.resolved_by else "")
            elif s.status is StepStatus.REJECTED and s.error is not None:
                detail = s.error.message
        case StepKind.CHILD:
            # A child is told apart from its siblings by its input, then its id.
            detail = (
                f"input {preview(s.input, 80)} · {s.child_workflow_id}"
                if s.input is not None
                else s.child_workflow_id or ""
            )
            error = None if s.error is None else s.error.as_dict()
        case StepKind.SIGNAL | StepKind.OPERATION:
            detail = preview(s.value, 120)
        case _:
            pass
    return Step(
        key=s.key,
        kind=s.kind.value,
        name=s.label,
        status=s.status.value,
        start=s.start,
        end=s.end,
        attempts=s.attempt_count,
        max_attempts=s.max_attempts,
        deadline=None if s.deadline is None else s.deadline.at,
        deadline_label=label,
        detail=detail,
        error=error,
        schema=s.schema,
        number=s.number,
        attempt_list=[
            {
                "number": a.number,
                "status": a.status.value,
                "start": a.started_at,
                "end": a.ended_at,
                "error": None if a.error is None else f"{a.error.type}: {a.error.message}",
            }
            for a in s.attempts
        ]
        if s.kind is StepKind.TASK
        else [],
        child_workflow_id=s.child_workflow_id,
    )
