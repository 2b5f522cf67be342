"""The plain data that crosses the store seam, free of any database driver.

Backends turn these into statements; the engine builds and reads them. Times are epoch
seconds (floats). JSON values travel as text where they are written (``*_json``) and as
decoded values where they are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flovyn_nb.model import PromiseStatus, RunStatus

# A recorded event as histories hand it out: (seq, type, payload, ts).
HistoryEvent = tuple[int, str, Any, float]


def as_stored(epoch: float) -> float:
    """``epoch`` as the store keeps it (to the microsecond), so that the engine and the
    store judge a deadline alike."""
    return datetime.fromtimestamp(epoch, UTC).timestamp()


@dataclass(frozen=True, slots=True)
class EventRow:
    """One event of a run's history."""

    execution_id: str
    seq: int
    type: str
    payload: str  # JSON text
    ts: float


@dataclass(frozen=True, slots=True)
class LogRow:
    """One captured log line of a run (``task_execution_id``: of one of its steps)."""

    execution_id: str
    task_execution_id: str | None
    ts: float
    stream: str
    level: str
    message: str


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run row to insert: the start of a run is durable once it is committed."""

    execution_id: str
    workflow_id: str
    kind: str
    input_json: str
    source_hash: str | None
    owner: str | None
    parent_id: str | None
    now: float
    queue: str = "default"  # an unowned run waits there for an engine serving it


@dataclass(frozen=True, slots=True)
class RunUpdate:
    """A run's new status (and, when it ended, its output or error)."""

    execution_id: str
    status: RunStatus
    ts: float
    output_json: str | None = None
    error_json: str | None = None


@dataclass(frozen=True, slots=True)
class RunRow:
    """A run as the engine needs it (no history)."""

    id: str
    workflow_id: str
    kind: str
    status: RunStatus
    input: Any
    owner: str | None
    parent_id: str | None
    cancel_requested: bool
    source_hash: str | None
    queue: str = "default"


@dataclass(frozen=True, slots=True)
class NewPromise:
    """A promise a workflow reached: pending until settled or timed out."""

    promise_id: str
    execution_id: str
    name: str
    timeout_at: float | None
    schema_json: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class PromiseRow:
    """A promise's row: its state, outcome and whether its workflow has it yet."""

    id: str
    execution_id: str
    name: str
    status: PromiseStatus
    timeout_at: float | None
    schema: Any
    value: Any
    error: str | None
    resolved_by: str | None
    delivered: bool


@dataclass(frozen=True, slots=True)
class SignalRow:
    """A signal not yet handed to its run."""

    id: str
    execution_id: str
    name: str
    value: Any


@dataclass(frozen=True, slots=True)
class EngineRow:
    """An engine that registered and has not said it stopped."""

    id: str
    pid: int
    host: str
    proc_start: str | None
    heartbeat_at: float


@dataclass(frozen=True, slots=True)
class Inbox:
    """What other processes wrote for some runs and their owner has not taken yet."""

    promises: list[PromiseRow]
    signals: list[SignalRow]  # in the order they were sent
    cancels: list[str]  # execution ids with a cancel request


@dataclass(frozen=True, slots=True)
class Claimed:
    """The outcome of a claim: the runs taken, with their histories, and the engines that
    were alive at the time."""

    runs: list[tuple[RunRow, list[HistoryEvent]]]
    engines: list[EngineRow]
    # Runs of the claimed kinds and queues were left waiting by a limit (the claim's own,
    # or a queue's): claim again when a run ends. ``retry_at``: a queue's rate limit lets
    # the next one start then.
    more: bool = False
    retry_at: float | None = None
