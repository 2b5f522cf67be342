"""The dashboard's schedules: each one's workflow, cron, queue, next fire time and paused
state, and its Pause / Resume button (``client.pause_schedule`` / ``resume_schedule``).

The next fire time goes to the browser as a deadline (epoch ms), which counts it down by
itself, like a promise's timeout; the static forms show it as an ISO timestamp.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from pathlib import Path
from typing import Any

from flovyn_nb import client
from flovyn_nb.widgets.actions import describe, submit

JSON = Any


def _ms(when: datetime | None) -> float | None:
    return None if when is None else round(when.timestamp() * 1000.0, 3)


def _iso(when: datetime | None) -> str:
    if when is None:
        return ""
    return when.isoformat(timespec="seconds").replace("+00:00", "Z")


def schedules_json(
    schedules: list[client.ScheduleInfo], buttons: dict[str, dict[str, JSON]]
) -> list[dict[str, JSON]]:
    """The rows the browser renders; ``buttons``: each schedule's Pause/Resume state."""
    return [
        {
            "name": s.name,
            "workflow": s.kind,
            "cron": s.cron,
            "queue": s.queue,
            "paused": s.paused,
            "next_fire": None if s.paused else _ms(s.next_fire),
            "last_slot": _ms(s.last_slot),
            "busy": bool(buttons.get(s.name, {}).get("busy")),
            "error": buttons.get(s.name, {}).get("error"),
        }
        for s in schedules
    ]


def _when(s: client.ScheduleInfo) -> str:
    return "paused" if s.paused else f"next {_iso(s.next_fire) or '-'}"


def schedules_text(schedules: list[client.ScheduleInfo]) -> list[str]:
    """``text/plain`` lines (ISO timestamps only: nothing relative to the time shown)."""
    if not schedules:
        return []
    width = max(len(s.name) for s in schedules)
    kind_width = max(len(s.kind) for s in schedules)
    cron_width = max(len(s.cron) for s in schedules)
    lines = [f"schedules ({len(schedules)}):"]
    lines.extend(
        f"  {s.name:<{width}}  {s.kind:<{kind_width}}  {s.cron:<{cron_width}}  {_when(s)}"
        for s in schedules
    )
    return lines


def schedules_html(schedules: list[client.ScheduleInfo], cell: str) -> str:
    """A static table of the schedules (``cell``: the style of a table cell)."""
    if not schedules:
        return ""
    e = html.escape
    head = "".join(
        f'<th style="{cell}">{h}</th>'
        for h in ("schedule", "workflow", "cron", "queue", "next fire (UTC)")
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td style="{cell}">{c}</td>'
            for c in (
                e(s.name),
                e(s.kind),
                f"<code>{e(s.cron)}</code>",
                e(s.queue),
                "paused" if s.paused else e(_iso(s.next_fire)),
            )
        )
        + "</tr>"
        for s in schedules
    )
    return (
        f'<div style="margin-top:8px"><b>schedules</b>'
        f'<table class="flovyn-schedules" style="border-collapse:collapse;margin-top:4px">'
        f"<tr>{head}</tr>{rows}</table></div>"
    )


class ScheduleButtons:
    """Pause / Resume clicks (kernel main thread): the store write runs on a worker
    thread; its outcome is kept per schedule and ``changed`` asks for a re-read."""

    def __init__(self, store: Path | str, changed: Callable[[], None]) -> None:
        self.store = store
        self._changed = changed
        self._lock = threading.Lock()
        self._state: dict[str, dict[str, JSON]] = {}

    def states(self) -> dict[str, dict[str, JSON]]:
        with self._lock:
            return {name: dict(state) for name, state in self._state.items()}

    def handle(self, content: JSON) -> bool:
        """Act on ``{"action": "pause_schedule" | "resume_schedule", "name": ...}``;
        False for any other message."""
        if not isinstance(content, dict):
            return False
        action = content.get("action")
        if action not in ("pause_schedule", "resume_schedule"):
            return False
        name = str(content.get("name", ""))
        call = client.pause_schedule if action == "pause_schedule" else client.resume_schedule
        self._set(name, busy=True, error=None)
        try:
            future: Future[None] = submit(call, name, store=self.store)
        except Exception as exc:
            self._done(name, exc)
            return True
        future.add_done_callback(lambda f: self._done(name, f.exception()))
        return True

    def _done(self, name: str, exc: BaseException | None) -> None:
        self._set(name, busy=False, error=None if exc is None else describe(exc))

    def _set(self, name: str, **state: JSON) -> None:
        with self._lock:
            self._state[name] = state
        self._changed()
