"""Step logs: print, sys.stderr, logging and ctx.logger inside a step go to that step.

A context variable names the step (run and task) the current code belongs to; it follows
the code into worker threads because anyio copies the context. While it is set, writes to
``sys.stdout``/``sys.stderr`` and log records are routed to the step's sink, never to the
process's streams, so nothing leaks into whichever notebook cell is running.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TextIO

Sink = Callable[[str | None, str, str, str], None]  # (task_execution_id, stream, level, message)


@dataclass(eq=False)
class StepScope:
    sink: Sink
    task_execution_id: str | None = None
    muted: Callable[[], bool] = lambda: False  # e.g. workflow code that is being replayed
    _partial: dict[str, str] = field(default_factory=dict)

    def write(self, stream: str, text: str) -> None:
        if self.muted():
            return
        buffered = self._partial.get(stream, "") + text
        *lines, rest = buffered.split("\n")
        self._partial[stream] = rest
        level = "ERROR" if stream == "stderr" else "INFO"
        for line in lines:
            self.sink(self.task_execution_id, stream, level, line)

    def flush(self) -> None:
        for stream, rest in list(self._partial.items()):
            if rest:
                self._partial[stream] = ""
                self.sink(
                    self.task_execution_id, stream, "ERROR" if stream == "stderr" else "INFO", rest
                )

    def log(self, record: logging.LogRecord, text: str) -> None:
        if not self.muted():
            self.sink(self.task_execution_id, "log", record.levelname, text)


current_step: ContextVar[StepScope | None] = ContextVar("flovyn_step", default=None)


@contextlib.contextmanager
def step(scope: StepScope) -> Iterator[StepScope]:
    if _installed:
        _ensure_proxies()
    token = current_step.set(scope)
    try:
        yield scope
    finally:
        scope.flush()
        current_step.reset(token)


class _StreamProxy(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: step output to the step, the rest passes on."""

    def __init__(self, name: str, original: TextIO) -> None:
        self._name = name
        self.original = original

    def write(self, text: str) -> int:
        scope = current_step.get()
        if scope is None:
            return self.original.write(text)
        scope.write(self._name, text)
        return len(text)

    def flush(self) -> None:
        if current_step.get() is None:
            self.original.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class StepLogHandler(logging.Handler):
    """Root handler: records emitted inside a step are stored with the step."""

    def emit(self, record: logging.LogRecord) -> None:
        scope = current_step.get()
        if scope is not None:
            scope.log(record, self.format(record))


class _OutsideStepsOnly(logging.Filter):
    """Added to the other root handlers so step records do not also reach the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return current_step.get() is None


_lock = threading.Lock()
_installed = 0
_handler = StepLogHandler()
_handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
_filter = _OutsideStepsOnly()


def install() -> None:
    """Route step output (idempotent; counted, so nested engines uninstall cleanly)."""
    global _installed
    with _lock:
        _installed += 1
        if _installed > 1:
            return
        _ensure_proxies()
        root = logging.getLogger()
        for handler in root.handlers:
            handler.addFilter(_filter)
        root.addHandler(_handler)


def _ensure_proxies() -> None:
    # Something (a test runner's capture, a redirect_stdout) may have put its own stream in
    # place since install(): wrap whatever is there now.
    if not isinstance(sys.stdout, _StreamProxy):
        sys.stdout = _StreamProxy("stdout", sys.stdout)
    if not isinstance(sys.stderr, _StreamProxy):
        sys.stderr = _StreamProxy("stderr", sys.stderr)


def uninstall() -> None:
    global _installed
    with _lock:
        _installed = max(0, _installed - 1)
        if _installed:
            return
        if isinstance(sys.stdout, _StreamProxy):
            sys.stdout = sys.stdout.original
        if isinstance(sys.stderr, _StreamProxy):
            sys.stderr = sys.stderr.original
        root = logging.getLogger()
        root.removeHandler(_handler)
        for handler in root.handlers:
            handler.removeFilter(_filter)


def step_logger(name: str, scope_getter: Callable[[], StepScope | None]) -> logging.Logger:
    """A logger (not in logging's tree) whose records go only to the step's sink."""
    logger = logging.Logger(name, logging.DEBUG)  # noqa: LOG001 (kept out of logging's tree)
    logger.propagate = False
    logger.addHandler(_ScopedHandler(scope_getter))
    return logger


class _ScopedHandler(logging.Handler):
    def __init__(self, scope_getter: Callable[[], StepScope | None]) -> None:
        super().__init__()
        self._scope_getter = scope_getter
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        scope = current_step.get() or self._scope_getter()
        if scope is not None:
            scope.log(record, self.format(record))
