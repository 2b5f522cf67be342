"""The stream items of a run's tasks as a panel shows them: tokens appended as running
text, the latest progress as a bar, data items as rows, errors marked.

Items reach a panel twice over (live from the engine, and again from overlapping store
reads) and identical tokens are common ("the", " "), so duplicates are dropped by
counting: an item is shown once per copy the fuller of the two sources holds.
"""

from __future__ import annotations

import html
import json
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from flovyn_nb.client.streams import StreamItem, decode

__all__ = ["StepStream", "StreamBook", "streams_html", "streams_json"]

TEXT_TAIL = 8000  # characters of streamed text a panel keeps per step
ROWS = 50  # data items kept per step
_Key = tuple[str | None, int, str, str]


class Line(Protocol):
    """A captured line as ``widgets/state.py`` has it (a protocol: no import cycle)."""

    @property
    def step(self) -> str | None: ...
    @property
    def ts(self) -> float: ...
    @property
    def stream(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def key(self) -> _Key: ...


@dataclass
class StepStream:
    """What one step streamed so far."""

    count: int = 0
    text: str = ""
    tokens: int = 0
    progress: float | None = None
    details: str | None = None
    rows: deque[Any] = field(default_factory=lambda: deque(maxlen=ROWS))
    errors: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=ROWS))

    def add(self, item: StreamItem) -> None:
        self.count += 1
        p = item.payload
        if item.kind == "token":
            self.tokens += 1
            self.text = (self.text + str(p.get("text", "")))[-TEXT_TAIL:]
        elif item.kind == "progress":
            self.progress = max(0.0, min(1.0, float(p.get("progress") or 0)))
            self.details = p.get("details")
        elif item.kind == "data":
            self.rows.append(p.get("data"))
        else:
            self.errors.append({"message": p.get("message", ""), "code": p.get("code")})


class StreamBook:
    """Stream items per step (None: the workflow's own code, which cannot stream)."""

    def __init__(self) -> None:
        self.steps: dict[str | None, StepStream] = {}
        self._shown: Counter[_Key] = Counter()
        self._live: Counter[_Key] = Counter()
        self._stored: Counter[_Key] = Counter()

    def take(self, line: Line, *, live: bool) -> bool:
        """Keep ``line`` if it is a stream item (True), or leave it to the log (False)."""
        when = datetime.fromtimestamp(line.ts, UTC)
        item = decode("", line.step, when, line.stream, line.message)
        if item is None:
            return False
        seen = self._live if live else self._stored
        seen[line.key] += 1
        if seen[line.key] > self._shown[line.key]:
            self._shown[line.key] += 1
            self.steps.setdefault(line.step, StepStream()).add(item)
        return True

    def begin_read(self, since_micros: int | None) -> None:
        """A store read of the items after ``since`` starts: they all come again."""
        for key in list(self._stored):
            if since_micros is None or key[1] > since_micros:
                del self._stored[key]


def streams_json(stream: StepStream | None) -> dict[str, Any] | None:
    """A step's stream for the browser view (None: it streamed nothing)."""
    if stream is None:
        return None
    return {
        "count": stream.count,
        "text": stream.text,
        "tokens": stream.tokens,
        "progress": stream.progress,
        "details": stream.details,
        "rows": [json.dumps(row, sort_keys=True, default=str) for row in stream.rows],
        "errors": list(stream.errors),
    }


def streams_html(stream: StepStream | None) -> str:
    """A step's stream as static HTML: text, a progress bar, rows, errors."""
    if stream is None:
        return ""
    e = html.escape
    out = ['<div class="flovyn-stream" style="margin:2px 0 4px 0">']
    if stream.progress is not None:
        pct = round(stream.progress * 100)
        out.append(
            f'<progress max="100" value="{pct}"></progress> {pct}%'
            + (f" {e(stream.details)}" if stream.details else "")
        )
    if stream.text:
        out.append(f'<pre style="white-space:pre-wrap;margin:2px 0">{e(stream.text)}</pre>')
    out.extend(
        f"<div><code>{e(json.dumps(row, sort_keys=True, default=str))}</code></div>"
        for row in stream.rows
    )
    out.extend(
        f'<div style="color:#cf222e">error: {e(str(error["message"]))}'
        + (e(f" [{error['code']}]") if error.get("code") else "")
        + "</div>"
        for error in stream.errors
    )
    out.append("</div>")
    return "".join(out)
