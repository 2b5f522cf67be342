"""How ``flovyn-nb logs`` prints a run's lines: log lines one per line, stream items as
a reader wants them (tokens appended as running text, progress as a percentage line,
data as a JSON line, errors marked)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import click

from flovyn_nb.client.streams import stream_item
from flovyn_nb.model import LogEntry

__all__ = ["LogPrinter"]


class LogPrinter:
    """Prints log entries in order; consecutive tokens of one step share a line."""

    def __init__(self, when: Callable[[datetime], str]) -> None:
        self._when = when
        self._open_step: str | bool | None = False  # the step whose token line is open

    def write(self, entry: LogEntry, step: str) -> None:
        """Print ``entry`` under the label ``step`` (its step's name, or ``workflow``)."""
        item = stream_item(entry)
        if item is not None and item.kind == "token":
            if self._open_step != entry.task_execution_id:
                self.end_line()
                click.echo(f"{self._when(entry.ts)} {step:>8} {'token':<8} ", nl=False)
                self._open_step = entry.task_execution_id
            click.echo(item.text, nl=False)
            return
        self.end_line()
        if item is None:
            line = f"{self._when(entry.ts)} {step:>8} {entry.stream:<8} {entry.message}"
            click.echo(line, err=entry.stream == "stderr")
            return
        label = {"progress": "progress", "data": "data", "error": "ERROR"}[item.kind]
        click.echo(f"{self._when(entry.ts)} {step:>8} {label:<8} {item.text}")

    def end_line(self) -> None:
        """Close an open line of tokens (before other output, and at the end)."""
        if self._open_step is not False:
            click.echo("")
            self._open_step = False
