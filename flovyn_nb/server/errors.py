"""Errors as the REST API answers them: a status and ``{"error": "<one line>"}``.

Flovyn errors are mapped by type (never by their text): a bad value is 400, an unknown
run, promise or workflow 404, a state conflict 409, a store that cannot be used 503 and
a feature this installation lacks 501.
"""

from __future__ import annotations

from flovyn_nb.errors import (
    DuplicateWorkflowId,
    EngineError,
    FlovynError,
    InvalidInput,
    PromiseAlreadyResolved,
    StoreError,
    UnknownPromise,
    UnknownWorkflow,
)

__all__ = ["ApiError", "status_of"]


class ApiError(Exception):
    """An answer other than 2xx, raised by the server's own checks (bad query values, a
    state conflict found before calling the client, a missing feature)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# Most specific first: UnknownWorkflowKind is an UnknownWorkflow, StoreLocked a StoreError.
_STATUS: tuple[tuple[type[FlovynError], int], ...] = (
    (InvalidInput, 400),
    (UnknownWorkflow, 404),
    (UnknownPromise, 404),
    (PromiseAlreadyResolved, 409),
    (DuplicateWorkflowId, 409),
    (StoreError, 503),
    (EngineError, 501),
)


def status_of(error: FlovynError) -> int:
    """The HTTP status for a flovyn error (500 for one the API has no answer for)."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def one_line(message: str, limit: int = 500) -> str:
    """The first line of a message, cut to ``limit`` characters (an answer is one line)."""
    line = message.strip().splitlines()[0] if message.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"
