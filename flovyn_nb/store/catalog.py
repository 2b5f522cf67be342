"""Plain rows of the store's catalog: registered definitions, queues and schedules.

Like :mod:`flovyn_nb.store.rows`, free of any database driver; times are epoch seconds,
JSON values travel as text where they are written (``*_json``) and decoded where read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from flovyn_nb.store.rows import EngineRow, EventRow, NewRun

DefinitionType = Literal["workflow", "task"]

DEFAULT_QUEUE = "default"


@dataclass(frozen=True, slots=True)
class NewDefinition:
    """A workflow or task as an engine registers it (see ``Store.record_definitions``)."""

    type: DefinitionType
    kind: str
    source_hash: str
    description: str | None
    source: str | None
    input_schema_json: str | None
    output_schema_json: str | None


@dataclass(frozen=True, slots=True)
class Server:
    """An engine (not marked stopped; it may have died) that registered a definition."""

    engine: EngineRow
    source_hash: str
    queues: list[str]


@dataclass(frozen=True, slots=True)
class DefinitionRow:
    """One recorded version of a definition. ``version`` counts the distinct sources of
    its kind in the store (1, 2, ...); ``servers`` are the engines that registered the
    kind (any version) and have not stopped."""

    type: DefinitionType
    kind: str
    version: int
    source_hash: str
    description: str | None
    source: str | None
    input_schema: Any
    output_schema: Any
    registered_at: float
    last_registered_at: float
    servers: list[Server] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A named queue's limits (None: unlimited). ``rate_limit`` runs may start per
    ``rate_period`` seconds across every engine."""

    name: str
    concurrency: int | None = None
    worker_concurrency: int | None = None
    rate_limit: int | None = None
    rate_period: float | None = None


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """A cron schedule: starts a run of ``kind`` on ``queue`` at every slot of ``cron``.

    ``last_slot`` is the latest slot fired (epoch seconds), ``next_fire`` the next slot
    due. ``catch_up`` says what happens to slots missed while nothing ran: ``none`` (skip
    them), ``one`` (fire the latest missed one), ``all`` (fire each)."""

    name: str
    kind: str
    cron: str
    input_json: str
    queue: str
    catch_up: str
    paused: bool
    next_fire: float | None
    last_slot: float | None
    created_at: float


@dataclass(frozen=True, slots=True)
class FireSchedule:
    """Fire the slots of a schedule: insert ``runs`` (whose workflow ids already exist are
    skipped, so a double fire starts nothing twice) and move the schedule to
    ``last_slot``/``next_fire``, only if its last slot is still ``expected_last_slot``
    and it is not paused. Result: the workflow ids of the runs it inserted."""

    name: str
    expected_last_slot: float | None
    last_slot: float | None
    next_fire: float | None
    runs: list[tuple[NewRun, EventRow]]  # each run with its WORKFLOW_STARTED event
