"""Door functions for cron schedules: ``fn.schedule`` and listing, pausing, resuming and
deleting them (the engines that have a schedule's workflow fire it, see
``engine/schedules.py``)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flovyn_nb import serde
from flovyn_nb.client import definitions as catalog
from flovyn_nb.client.enqueue import checked_input
from flovyn_nb.cron import check_catch_up, check_cron, next_slot
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine.queues import check_queue_name
from flovyn_nb.errors import InvalidInput
from flovyn_nb.store.catalog import ScheduleRow

__all__ = [
    "ScheduleInfo",
    "delete_schedule",
    "list_schedules",
    "pause_schedule",
    "resume_schedule",
    "schedule",
]


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule as stored: a run of ``kind`` on ``queue`` at every slot of ``cron``."""

    name: str
    kind: str
    cron: str
    input: Any
    queue: str
    catch_up: str
    paused: bool
    next_fire: datetime | None
    last_slot: datetime | None


def _when(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _info(row: ScheduleRow) -> ScheduleInfo:
    return ScheduleInfo(
        row.name,
        row.kind,
        row.cron,
        serde.loads(row.input_json),
        row.queue,
        row.catch_up,
        row.paused,
        _when(row.next_fire),
        _when(row.last_slot),
    )


def _now() -> float:
    """The time schedules are judged by: the engine's clock here (a FakeClock in tests)."""
    engine = catalog.running_engine()
    return float(engine.clock.now()) if engine is not None else time.time()


def _changed() -> None:
    engine = catalog.running_engine()
    if engine is not None:
        engine.claim_soon()  # its own ring of the work bell does not wake it


def schedule(
    workflow: WorkflowDefinition[Any] | str,
    *,
    cron: str,
    input: Any = None,
    name: str | None = None,
    catch_up: str = "none",
    queue: str = "default",
    store: str | os.PathLike[str] | None = None,
) -> ScheduleInfo:
    """Start a run of ``workflow`` at every slot of ``cron`` (UTC), exactly once per slot
    whichever engines run (the run of slot T is ``sched-<name>-<T ISO>``).

    Args:
        cron: a cron expression, e.g. ``"0 6 * * *"``.
        input: the input of every run (checked now).
        name: the schedule's name (default: the workflow's); scheduling a name again
            replaces its definition and keeps what it fired.
        catch_up: slots missed while no engine ran: ``"none"`` (skip), ``"one"`` (start
            the latest), ``"all"`` (start each).
        queue: the queue its runs wait in.

    Raises:
        InvalidInput: a bad cron expression, catch-up mode, queue or input; nothing is
            recorded.
        UnknownWorkflowKind: the workflow is neither defined here nor recorded.
    """
    check_cron(cron)
    check_catch_up(catch_up)
    check_queue_name(queue)
    target = catalog.store_of(store)
    kind, data, _ = checked_input(workflow, input, target)
    name = kind if name is None else name
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"a schedule name must be a non-empty string, got {name!r}")
    now = _now()
    row = ScheduleRow(
        name, kind, cron, serde.dumps(data), queue, catch_up, False, next_slot(cron, now), None, now
    )
    stored = target.put_schedule(row)
    _changed()
    return _info(stored)


def list_schedules(*, store: str | os.PathLike[str] | None = None) -> list[ScheduleInfo]:
    """Every schedule of the store, by name."""
    return [_info(row) for row in catalog.store_of(store).list_schedules()]


def pause_schedule(name: str, *, store: str | os.PathLike[str] | None = None) -> None:
    """Stop firing ``name`` (slots while paused are skipped). Raises: InvalidInput."""
    catalog.store_of(store).pause_schedule(name, True, next_fire=None)
    _changed()


def resume_schedule(name: str, *, store: str | os.PathLike[str] | None = None) -> None:
    """Fire ``name`` again from its next slot on. Raises: InvalidInput."""
    target = catalog.store_of(store)
    rows = {row.name: row for row in target.list_schedules()}
    row = rows.get(name)
    now = _now()
    upcoming = None if row is None else next_slot(row.cron, now)
    target.pause_schedule(name, False, next_fire=upcoming)
    _changed()


def delete_schedule(name: str, *, store: str | os.PathLike[str] | None = None) -> None:
    """Delete ``name`` (its runs stay). Raises: InvalidInput."""
    catalog.store_of(store).delete_schedule(name)
    _changed()
