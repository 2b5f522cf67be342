"""Small tables that render the same way everywhere: aligned ``text/plain`` (for papermill
output, nbval and terminals) and a static ``text/html`` table (for JupyterLab and nbconvert).

No object addresses and no wall-clock times unless a caller puts them in a cell, so the
text is deterministic for deterministic content.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

__all__ = ["Table", "clip"]


def clip(text: str, width: int = 60) -> str:
    """One line of at most ``width`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


class Table:
    """A titled table of strings, optionally followed by a few lines of notes."""

    def __init__(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        title: str = "",
        notes: Sequence[str] = (),
        empty: str = "(none)",
    ) -> None:
        self.columns = list(columns)
        self.rows = [["" if cell is None else str(cell) for cell in row] for row in rows]
        self.title = title
        self.notes = list(notes)
        self.empty = empty

    def text(self) -> str:
        lines = [self.title] if self.title else []
        if not self.rows:
            lines.append(self.empty)
        else:
            widths = [
                max(len(col), *(len(row[i]) for row in self.rows))
                for i, col in enumerate(self.columns)
            ]
            lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
            lines.append("  ".join("-" * w for w in widths))
            lines.extend(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                for row in self.rows
            )
        lines.extend(self.notes)
        return "\n".join(line.rstrip() for line in lines)

    def html(self) -> str:
        parts = ['<div class="flovyn-table">']
        if self.title:
            parts.append(f"<strong>{html.escape(self.title)}</strong>")
        if not self.rows:
            parts.append(f"<p>{html.escape(self.empty)}</p>")
        else:
            head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                for row in self.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        parts.extend(f"<p>{html.escape(note)}</p>" for note in self.notes)
        parts.append("</div>")
        return "".join(parts)

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        return self.html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())
