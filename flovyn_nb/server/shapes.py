"""The JSON the API answers with: camelCase keys, times as ISO 8601 strings in UTC.

Built from the client's plain data (``RunInfo``, ``PromiseInfo``, ``LogEntry``) and the
history fold, so the server interprets no event types itself. ``openapi.py`` documents
each shape under the same name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from flovyn_nb.history.events import events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.history.folded import Attempt, EarlierAttempt, Failure, FoldedRun, Step
from flovyn_nb.model import ErrorInfo, LogEntry, PromiseInfo, RunInfo
from flovyn_nb.server.errors import one_line

__all__ = [
    "earlier_attempt",
    "folded",
    "iso",
    "log_line",
    "promise",
    "run_detail",
    "run_row",
    "step",
]

JSON = dict[str, Any]


def iso(value: datetime | float | None) -> str | None:
    """An ISO 8601 time in UTC from a datetime or epoch seconds (microseconds: a log
    line's ``ts`` is the exact ``since`` for the lines after it)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(value, UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _summary(error: Failure | ErrorInfo | None) -> str | None:
    """An error as one line, ``Type: message`` (lists and timelines show it so)."""
    if error is None:
        return None
    return one_line(f"{error.type}: {error.message}" if error.message else error.type, 200)


def _failure(error: Failure | ErrorInfo | None) -> JSON | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "traceback": error.traceback}


def _duration_ms(run: RunInfo, now: float) -> int:
    """Until the run ended (its last update), or until now while it is active."""
    end = run.updated_at.timestamp() if run.status.is_terminal else now
    return max(0, round((end - run.created_at.timestamp()) * 1000))


def run_row(run: RunInfo, waiting_for: Iterable[str] = (), *, now: float | None = None) -> JSON:
    """A run as the runs list shows it (``error`` is a one-line summary)."""
    return {
        "workflowId": run.workflow_id,
        "executionId": run.execution_id,
        "kind": run.kind,
        "status": run.status.value,
        "createdAt": iso(run.created_at),
        "updatedAt": iso(run.updated_at),
        "durationMs": _duration_ms(run, time.time() if now is None else now),
        "error": _summary(run.error),
        "waitingFor": list(waiting_for),
        "queue": run.queue,
    }


def _attempt(attempt: Attempt) -> JSON:
    return {
        "attempt": attempt.number,
        "status": attempt.status.value,
        "error": _summary(attempt.error),
        "startedAt": iso(attempt.started_at),
        "endedAt": iso(attempt.ended_at),
    }


def step(item: Step) -> JSON:
    """One step of a run's timeline (``index`` is its 1-based number; errors of steps
    and attempts are one-line summaries, the run's own error has the traceback)."""
    return {
        "index": item.number,
        "name": item.label,
        "kind": item.kind.value,
        "status": item.status.value,
        "attempts": [_attempt(a) for a in item.attempts],
        "input": item.input,
        "output": item.value,
        "error": _summary(item.error),
        "startedAt": iso(item.start),
        "endedAt": iso(item.end),
        "childWorkflowId": item.child_workflow_id,
    }


def earlier_attempt(attempt: EarlierAttempt) -> JSON:
    """An attempt of the run that a retry superseded, with its steps as they stood."""
    return {
        "attempt": attempt.number,
        "status": attempt.status.value,
        "error": _summary(attempt.error),
        "endedAt": iso(attempt.ended_at),
        "retriedAt": iso(attempt.retried_at),
        "fromStep": attempt.from_step,
        "reason": attempt.reason,
        "steps": [step(s) for s in attempt.steps if s.number is not None],
    }


def folded(run: RunInfo) -> FoldedRun:
    """The fold of a run read with its events."""
    return fold(events_of(run.events))


def run_detail(
    run: RunInfo,
    history: FoldedRun,
    waiting_for: Iterable[str] = (),
    *,
    source: str | None = None,
) -> JSON:
    """A run with its input, output, full error, steps and events."""
    detail = run_row(run, waiting_for)
    detail.update(
        {
            "input": run.input,
            "output": run.output,
            "error": _failure(run.error),
            "parentId": run.parent_id,
            # Numbered steps only: received signals are in ``events``.
            "steps": [step(s) for s in history.commands],
            # A retried run: its attempt number and the attempts before, oldest first.
            "attempt": history.attempt,
            "earlierAttempts": [earlier_attempt(a) for a in history.earlier],
            # A fork: the run it was forked from and the step it ran again from.
            "forkedFrom": history.forked_from,
            "fromStep": history.from_step,
            "events": [
                {"seq": e.seq, "type": e.type.value, "payload": e.payload, "ts": iso(e.ts)}
                for e in run.events
            ],
            "source": source,
        }
    )
    return detail


def promise(item: PromiseInfo) -> JSON:
    """A pending promise, with the JSON schema of the value it wants (or null)."""
    return {
        "workflowId": item.workflow_id,
        "name": item.name,
        "schema": item.schema,
        "createdAt": iso(item.created_at),
        "timeoutAt": iso(item.timeout_at),
        # ctx.promise(description=...) is kept at the top of the promise's JSON schema.
        "description": item.schema.get("description")
        if isinstance(item.schema, dict) and isinstance(item.schema.get("description"), str)
        else None,
    }


def log_line(entry: LogEntry, step_names: Mapping[str, str]) -> JSON:
    """A captured log line; ``step`` names the task step it came from (null: workflow code)."""
    name = None if entry.task_execution_id is None else step_names.get(entry.task_execution_id)
    return {
        "ts": iso(entry.ts),
        "step": name,
        "level": entry.level,
        "text": entry.message,
        "stream": entry.stream,
    }
