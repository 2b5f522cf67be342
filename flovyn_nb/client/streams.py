"""Durable stream items of a run's tasks (``ctx.stream_token/progress/data/error``), as
plain data for the layers above (CLI, panels, kernel).

A task's stream items are stored with its log lines (kind ``stream.<type>``, a JSON
payload), so they share the engine's batched writer and the log's order; this module
tells them apart from ordinary log lines and decodes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from flovyn_nb.model import LogEntry

__all__ = ["STREAM_PREFIX", "StreamItem", "decode", "is_stream", "stream_item"]

STREAM_PREFIX = "stream."
StreamKind = Literal["token", "progress", "data", "error"]


@dataclass(frozen=True, slots=True)
class StreamItem:
    """One stream item of a task, in the order the task emitted it.

    ``payload`` is Flovyn's: ``{"text"}`` for a token, ``{"progress", "details"}`` for
    progress, ``{"data"}`` for data, ``{"message", "code"}`` for an error.
    """

    execution_id: str
    task_execution_id: str | None
    ts: datetime
    kind: StreamKind
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        """How ``flovyn-nb logs`` shows it: a token's text as is, the rest as one line."""
        p = self.payload
        if self.kind == "token":
            return str(p.get("text", ""))
        if self.kind == "progress":
            details = p.get("details")
            return f"{float(p.get('progress') or 0):.0%}" + (f" {details}" if details else "")
        if self.kind == "data":
            return json.dumps(p.get("data"), sort_keys=True)
        code = p.get("code")
        return f"{p.get('message', '')}" + (f" [{code}]" if code else "")


def is_stream(stream: str) -> bool:
    """Is a log entry's ``stream`` that of a stream item (not a printed or logged line)?"""
    return stream.startswith(STREAM_PREFIX)


def stream_item(entry: LogEntry) -> StreamItem | None:
    """The stream item a stored log entry holds, or None for an ordinary log line."""
    return decode(
        entry.execution_id, entry.task_execution_id, entry.ts, entry.stream, entry.message
    )


def decode(
    execution_id: str, task_execution_id: str | None, ts: datetime, stream: str, message: str
) -> StreamItem | None:
    """A stream item from a log row's fields (None: an ordinary log line)."""
    if not is_stream(stream):
        return None
    kind = stream[len(STREAM_PREFIX) :]
    if kind not in ("token", "progress", "data", "error"):
        return None
    try:
        payload = json.loads(message)
    except ValueError:
        payload = {"text": message} if kind == "token" else {"message": message}
    if not isinstance(payload, dict):
        payload = {"data": payload}
    return StreamItem(execution_id, task_execution_id, ts, kind, payload)  # type: ignore[arg-type]
