"""What a task sees when it takes a ``ctx`` parameter: :class:`TaskContext` (Flovyn's
names: ``attempt``, ``is_cancelled``, ``heartbeat``, ``report_progress`` and the durable
``stream_*`` methods)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from typing import Any, cast

from flovyn_nb import errors
from flovyn_nb.errors import FlovynError, WorkflowCancelled

__all__ = ["STREAM_KINDS", "Done", "Sent", "TaskContext"]


class TaskContext:
    """What a task sees when it takes a ``ctx`` parameter."""

    def __init__(
        self,
        *,
        task_execution_id: str,
        task_kind: str,
        attempt: int,
        workflow_id: str,
        logger: Callable[[], logging.Logger],
        progress: Callable[[float, str | None], None],
        stream: Callable[[str, str], None] | None = None,
    ) -> None:
        self.task_execution_id = task_execution_id
        self.task_kind = task_kind
        self.attempt = attempt
        self.workflow_id = workflow_id
        self._make_logger = logger
        self._logger: logging.Logger | None = None
        self._progress = progress
        self._stream = stream
        self._cancelled = threading.Event()
        self.last_heartbeat: float | None = None

    @property
    def logger(self) -> logging.Logger:
        """Log lines go to this task's step logs."""
        if self._logger is None:
            self._logger = self._make_logger()
        return self._logger

    @property
    def is_cancelled(self) -> bool:
        """True once the task was cancelled or timed out; sync tasks should stop then."""
        return self._cancelled.is_set()

    def cancel(self) -> None:
        self._cancelled.set()

    def cancellation_error(self) -> FlovynError:
        """The error to raise when the task sees it was cancelled (``raise ctx.cancellation_error()``)."""
        message = f"task {self.task_kind!r} was cancelled"
        # TaskCancelled, where flovyn_nb.errors has it; the run's cancellation error before.
        task_cancelled = getattr(errors, "TaskCancelled", None)
        if task_cancelled is not None:
            return cast(FlovynError, task_cancelled(message, task=self.task_kind))
        return WorkflowCancelled(message, workflow_id=self.workflow_id)

    def heartbeat(self) -> Done:
        """Tell the engine the task is alive (``await`` it in async tasks, call it in sync ones)."""
        self.last_heartbeat = time.monotonic()
        return Done()

    def report_progress(
        self, progress: float, message: str | None = None, *, details: str | None = None
    ) -> Done:
        """Report progress (0..1), shown in the run's step logs and panels.

        ``await`` it in async tasks, as in Flovyn; sync tasks call it plainly. ``message``
        is Flovyn's name for the text; ``details`` is accepted as well.

        Raises:
            InvalidInput: both ``message`` and ``details`` were given.
        """
        if message is not None and details is not None:
            raise errors.InvalidInput(
                "report_progress() got both message= and details=; pass only one of them"
            )
        self.last_heartbeat = time.monotonic()
        self._progress(max(0.0, min(1.0, float(progress))), message or details)
        return Done()

    # -- durable streams (Flovyn's stream_* methods) ----------------------------------------
    # Each item is stored with the step's log lines (kind ``stream.<type>``, JSON text),
    # through the engine's batched writer: a token costs a queued row, not a transaction.

    def stream(self, event_type: str, data: Any) -> Sent:
        """Stream one item of ``event_type`` (``token``, ``progress``, ``data``, ``error``).

        Stored durably with the step, in order, and shown live in the run's panel and by
        ``flovyn-nb logs --follow``. ``await`` it in async tasks; sync tasks call it.

        Raises:
            InvalidInput: ``event_type`` is not one of the four, or ``data`` is not JSON.
        """
        if event_type not in STREAM_KINDS:
            raise errors.InvalidInput(
                f"unknown stream event type {event_type!r}; use one of {', '.join(STREAM_KINDS)}"
            )
        if event_type == "token":
            payload: dict[str, Any] = {"text": data}
        elif event_type == "data":
            payload = {"data": data}
        else:
            payload = dict(data) if isinstance(data, dict) else {"value": data}
        return self._emit(event_type, payload)

    def stream_token(self, text: str) -> Sent:
        """Stream a chunk of generated text (an LLM token); the panel appends it."""
        return self._emit("token", {"text": str(text)})

    def stream_progress(self, progress: float, details: str | None = None) -> Sent:
        """Stream progress (0..1) with optional details; the panel shows a bar."""
        return self._emit("progress", {"progress": float(progress), "details": details})

    def stream_data(self, data: Any) -> Sent:
        """Stream one JSON value (a row of results, a partial answer...)."""
        return self._emit("data", {"data": data})

    def stream_error(self, message: str, code: str | None = None) -> Sent:
        """Stream an error notice (the task keeps running; raise to fail it)."""
        return self._emit("error", {"message": str(message), "code": code})

    def _emit(self, kind: str, payload: dict[str, Any]) -> Sent:
        if self._stream is None:
            return Sent(False)
        from flovyn_nb import serde  # pydantic: imported on first use, not by `import flovyn_nb`

        text = serde.encode_value(payload, what=f"stream_{kind}()")
        self.last_heartbeat = time.monotonic()
        self._stream(kind, text)
        return Sent(True)


STREAM_KINDS = ("token", "progress", "data", "error")


class Sent:
    """A stream item already queued: awaiting it gives Flovyn's acknowledgement (a bool)."""

    __slots__ = ("ok",)

    def __init__(self, ok: bool) -> None:
        self.ok = ok

    def __bool__(self) -> bool:
        return self.ok

    def __await__(self) -> Generator[Any, None, bool]:
        return self.ok
        yield  # makes this a generator


class Done:
    """Already done: awaiting it returns at once, so one call serves sync and async tasks."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield  # makes this a generator
