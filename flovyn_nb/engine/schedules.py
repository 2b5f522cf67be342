"""Cron schedules: each engine that has a schedule's workflow registered puts a deadline
at the schedule's next slot (the deadline queue: no polling tick) and fires it then.

Firing is one store transaction, a compare-and-set on the schedule's last slot: of the
engines racing for a slot exactly one starts its run, whose workflow id is derived from
the schedule and the slot (``sched-<name>-<slot ISO>``), so even a second start of the
same slot would be refused by the store. The run is created unowned on the schedule's
queue; an engine serving the queue claims it.

Slots missed while no engine ran (older than :data:`MISSED_AFTER` when they fire) follow
the schedule's ``catch_up``: ``none`` skips them, ``one`` starts the latest of them,
``all`` starts each (at most :data:`MAX_CATCH_UP`).
"""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any

import anyio

from flovyn_nb import serde
from flovyn_nb.cron import next_slot, run_id, slots_after
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine.threads import offload
from flovyn_nb.errors import StoreError, StoreLocked
from flovyn_nb.model import EventType, WorkflowStarted
from flovyn_nb.store import EventRow, NewRun
from flovyn_nb.store.catalog import DEFAULT_QUEUE, FireSchedule, ScheduleRow

if TYPE_CHECKING:
    from flovyn_nb.engine.deadlines import Deadline

MISSED_AFTER = 60.0  # a slot fired later than this after its time was missed
MAX_CATCH_UP = 1000


def plan(row: ScheduleRow, now: float) -> tuple[list[float], float | None, float]:
    """(slots to fire, the new last slot, the next slot) of a schedule at ``now``."""
    if row.last_slot is not None:
        after = row.last_slot
    elif row.next_fire is not None:
        after = row.next_fire - 0.5  # its first slot is next_fire itself
    else:
        after = now
    due = slots_after(row.cron, after, now, MAX_CATCH_UP)
    on_time = [s for s in due if now - s <= MISSED_AFTER]
    missed = [s for s in due if now - s > MISSED_AFTER]
    fire = {"none": on_time, "one": missed[-1:] + on_time, "all": due}[row.catch_up]
    last = due[-1] if due else row.last_slot
    return fire, last, next_slot(row.cron, max(now, last or now))


def new_runs(row: ScheduleRow, slots: list[float], now: float) -> list[tuple[NewRun, EventRow]]:
    import uuid

    runs = []
    data = serde.loads(row.input_json)
    for slot in slots:
        workflow_id, execution_id = run_id(row.name, slot), str(uuid.uuid4())
        started = WorkflowStarted(workflow_id=workflow_id, kind=row.kind, input=data)
        runs.append(
            (
                NewRun(
                    execution_id,
                    workflow_id,
                    row.kind,
                    row.input_json,
                    None,
                    None,
                    None,
                    now,
                    row.queue,
                ),
                EventRow(
                    execution_id,
                    1,
                    EventType.WORKFLOW_STARTED.value,
                    serde.dumps(started.dump()),
                    now,
                ),
            )
        )
    return runs


def declared(definition: Any, now: float) -> ScheduleRow | None:
    """The schedule a ``@workflow(schedule=...)`` declares (named after the workflow)."""
    if not isinstance(definition, WorkflowDefinition):
        return None  # tasks have no schedule
    cron = definition.extra.get("schedule")
    if cron is None:
        return None
    return ScheduleRow(
        name=definition.name,
        kind=definition.name,
        cron=cron,
        input_json="null",
        queue=definition.extra.get("queue") or DEFAULT_QUEUE,
        catch_up=definition.extra.get("catch_up") or "none",
        paused=False,
        next_fire=next_slot(cron, now),
        last_slot=None,
        created_at=time.time(),
    )


class Scheduler:
    """An engine's schedule deadlines (on the engine's loop)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._entries: dict[str, tuple[float, Deadline]] = {}
        self._changed = anyio.Event()
        self._changed.set()  # look at the store at start
        # Reads and fires in progress: the engine is not idle meanwhile (a FakeClock must
        # not jump past the next slot while a fire is still deciding it).
        self.busy = 0

    def poke(self) -> None:
        """Schedules may have changed in the store: look again (on the loop)."""
        self._changed.set()

    async def run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            self.busy += 1
            try:
                await self._refresh()
            except (StoreError, StoreLocked) as exc:
                self.engine._internal_error(f"reading schedules: {exc}")
            finally:
                self.busy -= 1

    async def _refresh(self) -> None:
        engine = self.engine
        rows = await offload(engine.store.list_schedules)
        wanted = {
            row.name: row
            for row in rows
            if not row.paused
            and row.next_fire is not None
            and engine.registry.find_workflow(row.kind) is not None
        }
        for name in list(self._entries):
            when, entry = self._entries[name]
            row = wanted.get(name)
            if row is None or row.next_fire != when:
                entry.cancel()
                del self._entries[name]
        for name, row in wanted.items():
            if name not in self._entries and row.next_fire is not None:
                self._arm(name, row.next_fire)

    def _arm(self, name: str, when: float) -> None:
        entry = self.engine.deadlines.add(when, functools.partial(self._due, name))
        self._entries[name] = (when, entry)

    def _due(self, name: str) -> None:
        self.busy += 1  # from the deadline on: no jump until the fire is decided
        self.engine.start_soon(self._fire, name)

    async def _fire(self, name: str) -> None:
        engine = self.engine
        self._entries.pop(name, None)
        try:
            rows = {r.name: r for r in await offload(engine.store.list_schedules)}
            row = rows.get(name)
            if row is not None and not row.paused:
                now = engine.clock.now()
                slots, last, upcoming = plan(row, now)
                runs = new_runs(row, slots, now)
                fire = FireSchedule(name, row.last_slot, last, upcoming, runs)
                started = await offload(engine.store.fire_schedule, fire)
                if started is not None and name not in self._entries:
                    self._arm(name, upcoming)  # before the clock can move on
                if started and row.queue in engine.queues:
                    engine.want_claim()  # its own ring of the work bell does not wake it
        except (StoreError, StoreLocked) as exc:
            engine._internal_error(f"firing schedule {name!r}: {exc}")
        finally:
            self.busy -= 1
            self.poke()
