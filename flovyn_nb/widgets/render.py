"""Run and dashboard state rendered three ways: JSON for the browser view, a
deterministic ``text/plain`` and a static ``text/html`` that works offline.

``text/plain`` never holds durations, object addresses or the time of display: only
names, statuses, attempt counts, results and deadlines as ISO timestamps (which a
sanitizer regex can mask), so re-executing a notebook gives the same text.
"""

from __future__ import annotations

import html
import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flovyn_nb.client import QueueWait, ScheduleInfo
from flovyn_nb.model import RunInfo, RunStatus
from flovyn_nb.tracebacks import user_traceback
from flovyn_nb.widgets.forms import build_form
from flovyn_nb.widgets.schedules import schedules_html, schedules_text
from flovyn_nb.widgets.state import LogBook, LogTail
from flovyn_nb.widgets.streams import streams_html, streams_json
from flovyn_nb.widgets.timeline import RunView, Step, preview

JSON = Any
FormStatus = Mapping[str, JSON]  # {"error": str | None, "busy": bool}
SHOWN_TAIL = 5  # log lines per step shown before "show all"


def ms(epoch: float | None) -> float | None:
    return None if epoch is None else round(epoch * 1000.0, 3)


def iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _error(error: Mapping[str, JSON] | None) -> dict[str, str] | None:
    if not error:
        return None
    full = str(error.get("traceback", ""))
    # The engine's frames hidden by default (the panel can show them: "full_traceback").
    short, hidden = user_traceback(full)
    return {
        "type": str(error.get("type", "Error")),
        "message": str(error.get("message", "")),
        "traceback": short,
        "full_traceback": full if hidden else "",
        "hidden_frames": str(hidden),
    }


def _log_json(tail: LogTail | None) -> dict[str, JSON]:
    if tail is None:
        return {"count": 0, "errors": 0, "lines": []}
    return {
        "count": tail.count,
        "errors": tail.errors,
        "lines": [
            {
                "t": ms(line.ts),
                "s": line.stream,
                "l": line.level,
                "m": line.message,
                "e": line.is_error,
            }
            for line in tail.lines
        ],
    }


def run_json(
    view: RunView,
    logs: LogBook,
    forms: Mapping[tuple[str, str], FormStatus],
    cancel: FormStatus | None,
    *,
    now: float,
    problem: str | None = None,
    check: FormStatus | None = None,
    again: FormStatus | None = None,
    wait: QueueWait | None = None,
) -> dict[str, JSON]:
    """What the browser view of one run renders from (the ``data`` trait); ``wait``:
    where the run waits for an engine (None: it ended or an engine holds it)."""
    steps = [
        {
            "key": step.key,
            "kind": step.kind,
            "name": step.name,
            "status": step.status,
            "start": ms(step.start),
            "end": ms(step.end),
            "attempts": step.attempts,
            "max_attempts": step.max_attempts,
            "deadline": ms(step.deadline),
            "deadline_label": step.deadline_label,
            "detail": step.detail,
            "error": _error(step.error),
            "logs": _log_json(logs.tails.get(step.key)) if step.kind == "task" else None,
            "streams": streams_json(logs.streams.steps.get(step.key)),
            # a failed task step: the one line that brings its record into a cell
            "debug_line": debug_line(view.workflow_id, step),
            "number": step.number,
            "attempt_list": [
                {**a, "start": ms(a["start"]), "end": ms(a["end"])} for a in step.attempt_list
            ]
            if step.attempts > 1
            else [],
            "child": step.child_workflow_id,
        }
        for step in view.steps
    ]
    promises = []
    for step in view.pending_promises:
        status = forms.get((view.workflow_id, step.name), {})
        promises.append(
            {
                "workflow_id": view.workflow_id,
                "name": step.name,
                "created": ms(step.start),
                "deadline": ms(step.deadline),
                "form": build_form(step.schema).spec(),
                "typed": bool(step.schema),
                "error": status.get("error"),
                "fields": status.get("fields") or {},
                "busy": bool(status.get("busy")),
            }
        )
    return {
        "kind": "run",
        "workflow_id": view.workflow_id,
        "execution_id": view.execution_id,
        "workflow_kind": view.kind,
        "status": view.status.value,
        "created": ms(view.created),
        "ended": ms(view.ended),
        "now": ms(now),
        "cancel_requested": view.cancel_requested,
        "cancel": dict(cancel or {}),
        "again": dict(again or {}),  # the Retry / Fork buttons' state
        "origin": list(view.origin),  # earlier attempts, the run it was forked from
        "steps": steps,
        "workflow_logs": _log_json(logs.tails.get(None)),
        "promises": promises,
        "has_output": view.has_output,
        "output": preview(view.output, 4000) if view.has_output else None,
        "error": _error(view.error),
        "problem": problem,
        "check": dict(check or {}),
        "queue": _wait_json(wait),
    }


def _wait_json(wait: QueueWait | None) -> dict[str, JSON] | None:
    if wait is None:
        return None
    return {
        "name": wait.queue,
        "served": wait.served,
        "engines": len(wait.engines),
        "text": wait.describe(),
    }


def debug_line(workflow_id: str, step: Step) -> str | None:
    """``%flovyn debug ID N`` for a failed task step (None for other steps)."""
    if step.kind != "task" or step.status != "FAILED" or step.number is None:
        return None
    return f"%flovyn debug {shlex.quote(workflow_id)} {step.number}"


# -- text/plain --------------------------------------------------------------------------


def _step_line(step: Step, width: int) -> str:
    parts = [f"  {step.kind:<9} {step.name:<{width}}  {step.status}"]
    if step.kind == "task" and step.attempts:
        parts.append(f"attempts={step.attempts}")
    if step.deadline is not None and step.active:
        parts.append(f"{step.deadline_label} {iso(step.deadline)}")
    if step.error and step.status in ("FAILED", "RETRYING"):
        error = _error(step.error) or {}
        parts.append(f"{error['type']}: {error['message']}".strip())
    return "  ".join(parts)


def run_text(view: RunView, wait: QueueWait | None = None) -> str:
    """The deterministic ``text/plain`` of a run (``wait``: where it waits for an engine)."""
    lines = [f"flovyn run {view.workflow_id!r} ({view.kind}): {view.status.value}"]
    if view.cancel_requested and not view.status.is_terminal:
        lines[0] += " (cancellation requested)"
    lines.extend(f"  ({line})" for line in view.origin)
    if wait is not None:
        lines.append(f"  {wait.describe()}")
    width = max([len(s.name) for s in view.steps] + [8])
    lines.extend(_step_line(step, width) for step in view.steps)
    lines.extend(
        f"  waiting for promise {step.name!r}: "
        f"fn.resolve_promise({view.workflow_id!r}, {step.name!r}, value)"
        for step in view.pending_promises
    )
    if view.has_output:
        lines.append(f"  result: {preview(view.output, 400)}")
    error = _error(view.error)
    if error is not None:
        lines.append(f"  error: {error['type']}: {error['message']}")
    return "\n".join(lines)


def dashboard_text(
    runs: list[RunInfo], store_name: str, schedules: list[ScheduleInfo] | None = None
) -> str:
    counts = _counts(runs)
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "no runs"
    lines = [f"flovyn runs in {store_name}: {summary}"]
    width = max([len(r.workflow_id) for r in runs] + [8])
    kind_width = max([len(r.kind) for r in runs] + [4])
    lines.extend(
        f"  {r.workflow_id:<{width}}  {r.kind:<{kind_width}}  {r.status.value}" for r in runs
    )
    lines.extend(schedules_text(schedules or []))
    return "\n".join(lines)


def _counts(runs: list[RunInfo]) -> dict[str, int]:
    counts = {status.value: 0 for status in RunStatus}
    for run in runs:
        counts[run.status.value] += 1
    return counts


# -- static text/html --------------------------------------------------------------------

_COLORS = {
    "COMPLETED": "#1a7f37",
    "RESOLVED": "#1a7f37",
    "FIRED": "#1a7f37",
    "RECEIVED": "#1a7f37",
    "FAILED": "#cf222e",
    "REJECTED": "#cf222e",
    "TIMED_OUT": "#cf222e",
    "ABANDONED": "#cf222e",
    "CANCELLED": "#6e7781",
    "WAITING": "#9a6700",
    "PENDING": "#9a6700",
    "RETRYING": "#9a6700",
    "RUNNING": "#0969da",
    "SCHEDULED": "#0969da",
}
_BOX = (
    "font-family:var(--jp-ui-font-family,system-ui,sans-serif);font-size:13px;"
    "border:1px solid #d0d7de;border-radius:6px;padding:8px 10px;max-width:960px;"
    # Long values wrap (or scroll in their own box), never out of the panel's border.
    "box-sizing:border-box;overflow-wrap:anywhere;overflow-x:auto"
)
_CELL = (
    "padding:2px 8px;border-bottom:1px solid #eaeef2;text-align:left;vertical-align:top;"
    "max-width:480px;overflow-wrap:anywhere"
)
_PRE = (
    "white-space:pre-wrap;overflow-wrap:anywhere;font-family:var(--jp-code-font-family,monospace);"
    "font-size:12px;"
    "margin:4px 0;padding:6px;background:#f6f8fa;border-radius:4px;max-height:320px;overflow:auto"
)


def _chip(status: str) -> str:
    color = _COLORS.get(status, "#6e7781")
    return (
        f'<span style="color:#fff;background:{color};border-radius:10px;padding:0 7px;'
        f'font-size:11px;font-weight:600">{html.escape(status)}</span>'
    )


def _duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return ""
    seconds = max(0.0, end - start)
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def run_html(view: RunView, logs: LogBook, wait: QueueWait | None = None) -> str:
    """A static HTML summary of a run: header, where it waits for an engine, step table,
    waits, result or error."""
    e = html.escape
    out = [
        f'<div class="flovyn-run-static" style="{_BOX}">',
        f'<div><b>{e(view.workflow_id)}</b> <span style="color:#57606a">({e(view.kind)})</span>'
        f" {_chip(view.status.value)}"
        f' <span style="color:#57606a">started {e(iso(view.created))}'
        + (f", took {e(_duration(view.created, view.ended))}" if view.ended else "")
        + "</span></div>",
    ]
    if wait is not None:
        color = "#57606a" if wait.served else "#9a6700"
        out.append(
            f'<div class="flovyn-queue" style="margin-top:4px;color:{color}">'
            f"{e(wait.describe())}</div>"
        )
    if view.steps:
        head = "".join(
            f'<th style="{_CELL}">{h}</th>'
            for h in ("step", "kind", "status", "started", "duration", "attempts", "detail")
        )
        out.append(f'<table style="border-collapse:collapse;margin-top:6px"><tr>{head}</tr>')
        for step in view.steps:
            detail = step.detail
            if step.error:
                error = _error(step.error) or {}
                detail = f"{error['type']}: {error['message']}"
            if step.deadline is not None and step.active:
                detail = f"{step.deadline_label} {iso(step.deadline)}"
            tail = logs.tails.get(step.key) if step.kind == "task" else None
            if tail is not None and tail.count:
                detail += f" [{tail.count} log lines" + (
                    f", {tail.errors} errors]" if tail.errors else "]"
                )
            cells = (
                e(step.name),
                e(step.kind),
                _chip(step.status),
                e(iso(step.start)),
                e(_duration(step.start, step.end)),
                str(step.attempts or ""),
                e(detail),
            )
            out.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
            if step.key in logs.streams.steps:
                stream = streams_html(logs.streams.steps[step.key])
                out.append(f'<tr><td style="{_CELL}" colspan="7">{stream}</td></tr>')
        out.append("</table>")
    for step in view.pending_promises:
        call = f"fn.resolve_promise({view.workflow_id!r}, {step.name!r}, value)"
        out.append(
            f'<div style="margin-top:6px">Waiting for promise <b>{e(step.name)}</b>'
            + (f" (times out {e(iso(step.deadline))})" if step.deadline else "")
            + f": resolve with <code>{e(call)}</code></div>"
        )
    if view.has_output:
        out.append(
            f'<div style="margin-top:6px"><b>Result</b><pre style="{_PRE}">'
            f"{e(preview(view.output, 4000))}</pre></div>"
        )
    failure = _error(view.error)
    if failure is not None:
        out.append(
            f'<div style="margin-top:6px;color:#cf222e"><b>{e(failure["type"])}</b>: '
            f'{e(failure["message"])}<pre style="{_PRE}">{e(failure["traceback"])}</pre></div>'
        )
    out.append("</div>")
    return "".join(out)


def dashboard_html(
    runs: list[RunInfo], store_name: str, schedules: list[ScheduleInfo] | None = None
) -> str:
    e = html.escape
    counts = _counts(runs)
    summary = " ".join(f"{_chip(s)} {n}" for s, n in counts.items() if n) or "no runs"
    out = [
        f'<div class="flovyn-dashboard-static" style="{_BOX}">',
        f"<div><b>flovyn runs</b> in {e(store_name)} &nbsp; {summary}</div>",
    ]
    if runs:
        head = "".join(
            f'<th style="{_CELL}">{h}</th>' for h in ("workflow id", "kind", "status", "created")
        )
        out.append(f'<table style="border-collapse:collapse;margin-top:6px"><tr>{head}</tr>')
        for run in runs:
            cells = (
                e(run.workflow_id),
                e(run.kind),
                _chip(run.status.value),
                e(iso(run.created_at.timestamp())),
            )
            out.append("<tr>" + "".join(f'<td style="{_CELL}">{c}</td>' for c in cells) + "</tr>")
        out.append("</table>")
    out.append(schedules_html(schedules or [], _CELL))
    out.append("</div>")
    return "".join(out)
