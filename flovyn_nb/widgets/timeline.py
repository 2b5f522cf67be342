"""A run's history folded into what a panel shows: steps (timeline rows), pending
promises, the run's status, result or error. Pure functions of the events: no I/O."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flovyn_nb.model import EventType, RunStatus

JSON = Any
E = EventType
_TERMINAL = {
    E.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
    E.WORKFLOW_EXECUTION_FAILED: RunStatus.FAILED,
    E.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
}
_WAITING = {E.TIMER_STARTED, E.PROMISE_CREATED}
_RESUMED = {E.TIMER_FIRED, E.PROMISE_RESOLVED, E.PROMISE_REJECTED, E.PROMISE_TIMEOUT}
ACTIVE_STEP = {"SCHEDULED", "RUNNING", "RETRYING", "WAITING", "PENDING"}


@dataclass(frozen=True, slots=True)
class Ev:
    """One event, whether it came from the store or live from the engine."""

    seq: int
    type: str
    payload: dict[str, JSON]
    ts: float


@dataclass
class Step:
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

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STEP


@dataclass
class RunView:
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


def epoch(value: JSON) -> float | None:
    """Epoch seconds of an ISO timestamp from a payload (None when absent or unreadable)."""
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


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
    view = RunView(workflow_id, execution_id, kind, stored_status, created)
    steps: dict[str, Step] = {}
    names: dict[str, int] = {}
    status: RunStatus | None = None

    def add(step: Step) -> Step:
        # Repeated names (the same task scheduled twice) get a number, in schedule order.
        count = names.get(f"{step.kind}:{step.name}", 0) + 1
        names[f"{step.kind}:{step.name}"] = count
        if count > 1:
            step.name = f"{step.name} #{count}"
        steps[step.key] = step
        view.steps.append(step)
        return step

    for ev in events:
        p, ts = ev.payload, ev.ts
        typ = ev.type
        if typ == E.WORKFLOW_STARTED:
            status = RunStatus.RUNNING
            view.created = min(view.created, ts)
        elif typ in _TERMINAL:
            status = _TERMINAL[E(typ)]
            view.ended = ts
            if typ == E.WORKFLOW_COMPLETED:
                view.output, view.has_output = p.get("output"), True
            elif typ == E.WORKFLOW_EXECUTION_FAILED:
                view.error = p.get("error")
        elif typ == E.CANCELLATION_REQUESTED:
            view.cancel_requested = True
        elif typ in _WAITING and status is not None and not status.is_terminal:
            status = RunStatus.WAITING
        if typ in _RESUMED and status is RunStatus.WAITING:
            status = RunStatus.RUNNING
        _fold_step(typ, p, ts, steps, add)

    if status is None or stored_status.is_terminal:
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


def _fold_step(typ: str, p: dict[str, JSON], ts: float, steps: dict[str, Step], add: Any) -> None:
    if typ == E.TASK_SCHEDULED:
        add(
            Step(
                key=str(p.get("taskExecutionId")),
                kind="task",
                name=str(p.get("taskKind", "task")),
                status="SCHEDULED",
                start=ts,
                max_attempts=int(p.get("maxAttempts", 1) or 1),
            )
        )
        return
    if typ == E.TIMER_STARTED:
        timer_id = str(p.get("timerId"))
        add(
            Step(
                key=f"timer:{timer_id}",
                kind="timer",
                name=timer_id,
                status="WAITING",
                start=ts,
                deadline=epoch(p.get("fireAt")),
                deadline_label="fires",
            )
        )
        return
    if typ == E.PROMISE_CREATED:
        name = str(p.get("promiseName"))
        add(
            Step(
                key=f"promise:{name}",
                kind="promise",
                name=name,
                status="PENDING",
                start=ts,
                deadline=epoch(p.get("timeoutAt")),
                deadline_label="times out",
                schema=p.get("schema"),
            )
        )
        return
    if typ == E.CHILD_WORKFLOW_INITIATED:
        add(
            Step(
                key=f"child:{p.get('childExecutionId')}",
                kind="child",
                name=str(p.get("kind", "child")),
                status="RUNNING",
                start=ts,
                detail=str(p.get("childWorkflowId", "")),
            )
        )
        return
    if typ == E.SIGNAL_RECEIVED:
        add(
            Step(
                key=f"signal:{p.get('signalId')}",
                kind="signal",
                name=str(p.get("signalName")),
                status="RECEIVED",
                start=ts,
                end=ts,
                detail=preview(p.get("value"), 120),
            )
        )
        return
    if typ == E.OPERATION_COMPLETED:
        add(
            Step(
                key=f"op:{len(steps)}",
                kind="operation",
                name=str(p.get("operationName")),
                status="COMPLETED",
                start=ts,
                end=ts,
                detail=preview(p.get("result"), 120),
            )
        )
        return
    _settle_step(typ, p, ts, steps)


def _settle_step(typ: str, p: dict[str, JSON], ts: float, steps: dict[str, Step]) -> None:
    if typ.startswith("TASK_"):
        step = steps.get(str(p.get("taskExecutionId")))
        if step is None:
            return
        attempt = int(p.get("attempt", step.attempts) or step.attempts)
        step.attempts = max(step.attempts, attempt)
        if typ == E.TASK_STARTED:
            step.status = "RUNNING"
            step.deadline = epoch(p.get("deadline"))
            step.deadline_label = "times out" if step.deadline else ""
        elif typ == E.TASK_COMPLETED:
            step.status, step.end, step.deadline = "COMPLETED", ts, None
            step.detail = preview(p.get("output"), 120)
        elif typ == E.TASK_FAILED:
            step.status, step.end, step.deadline = "FAILED", ts, None
            step.error = p.get("error")
            if p.get("timedOut"):
                step.detail = "timed out"
        elif typ == E.TASK_RETRY_SCHEDULED:
            step.status = "RETRYING"
            step.error = p.get("error")
            step.deadline = epoch(p.get("nextAttemptAt"))
            step.deadline_label = "retries"
        elif typ == E.TASK_CANCELLED:
            step.status, step.end, step.deadline = "CANCELLED", ts, None
        return
    if typ.startswith("TIMER_"):
        step = steps.get(f"timer:{p.get('timerId')}")
        if step is not None:
            step.status = "FIRED" if typ == E.TIMER_FIRED else "CANCELLED"
            step.end, step.deadline = ts, None
        return
    if typ in (E.PROMISE_RESOLVED, E.PROMISE_REJECTED, E.PROMISE_TIMEOUT):
        step = steps.get(f"promise:{p.get('promiseName')}")
        if step is None:
            return
        step.end, step.deadline = ts, None
        if typ == E.PROMISE_RESOLVED:
            step.status = "RESOLVED"
            by = p.get("resolvedBy")
            step.detail = preview(p.get("value"), 120) + (f" (by {by})" if by else "")
        elif typ == E.PROMISE_REJECTED:
            step.status = "REJECTED"
            step.detail = str(p.get("error", ""))
        else:
            step.status = "TIMED_OUT"
        return
    if typ in (E.CHILD_WORKFLOW_COMPLETED, E.CHILD_WORKFLOW_FAILED):
        step = steps.get(f"child:{p.get('childExecutionId')}")
        if step is None:
            return
        step.end = ts
        if typ == E.CHILD_WORKFLOW_COMPLETED:
            step.status = "COMPLETED"
        else:
            step.status = "CANCELLED" if p.get("cancelled") else "FAILED"
            step.error = p.get("error")
