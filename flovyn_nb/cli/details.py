"""What ``flovyn-nb show`` and ``logs`` print beyond the run's row: the failure's
traceback (engine frames hidden), step names for log lines, and why a run waits."""

from __future__ import annotations

import json
from typing import Any

import click

from flovyn_nb.tracebacks import user_traceback


def failure_tracebacks(run: Any, folded: Any) -> list[tuple[str, str]]:
    """(title, traceback) of a failed run: the failed steps' own tracebacks first (where
    the user's code raised), then the workflow's; engine frames hidden in each."""
    found: list[tuple[str, str]] = []
    for step in folded.steps:
        failure = step.error
        if failure is not None and failure.traceback:
            found.append((f"step {step.label} raised", failure.traceback))
    if run.error is not None and run.error.traceback:
        found.append(("the workflow raised", run.error.traceback))
    shown = []
    for title, text in found:
        trace, hidden = user_traceback(text)
        note = f" ({hidden} engine frame(s) hidden)" if hidden else ""
        shown.append((title + note, trace.rstrip()))
    return shown


def step_labels(folded: Any) -> dict[str, str]:
    """Task execution id → the step's label (``fetch``, ``fetch #2``) in a folded run."""
    return {step.key: step.label for step in folded.steps}


def log_label(task_execution_id: str | None, labels: dict[str, str]) -> str:
    """The name a log line is shown under: its step's label, ``workflow`` for the
    workflow's own code, the id's start for a step the history does not name."""
    if task_execution_id is None:
        return "workflow"
    return labels.get(task_execution_id, task_execution_id[:8])


def short(value: Any, width: int = 60) -> str:
    """``value`` as one line of at most ``width`` characters."""
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


def event_summary(payload: dict[str, Any]) -> str:
    """The one detail of an event worth a column: its step name (and attempt), else its
    error, output or attempt."""
    for key in ("taskKind", "promiseName", "signalName", "operationName", "timerId", "kind", "key"):
        if key in payload:
            extra = ""
            if "attempt" in payload:
                extra = f" attempt {payload['attempt']}"
            return f"{payload[key]}{extra}"
    if "error" in payload and isinstance(payload["error"], dict):
        return short(f"{payload['error'].get('type')}: {payload['error'].get('message')}")
    if "output" in payload:  # a step reused by @task(cache=True) ran nothing: say so
        return short(payload["output"]) + (" (reused)" if "cachedFrom" in payload else "")
    if "attempt" in payload:
        return f"attempt {payload['attempt']}"
    return ""


def parameters(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    for key, _ in pairs:
        # papermill assigns each parameter to a Python variable in an injected cell.
        if not key.isidentifier():
            raise click.BadParameter(
                f"{key!r} is not a Python variable name (letters, digits, _)",
                param_hint="'-p KEY VALUE'",
            )
    return {key: parameter(value) for key, value in pairs}


def parameter(text: str) -> Any:
    """papermill-style typing of `-p KEY VALUE`: numbers, true/false, null, JSON, or text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return text
