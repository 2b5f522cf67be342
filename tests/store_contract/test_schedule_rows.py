"""Store contract: schedules (put, list, pause, delete, and firing a slot once)."""

from __future__ import annotations

import json

import pytest
from contract_helpers import StoreFactory, event, new_run

from flovyn_nb.errors import InvalidInput
from flovyn_nb.store import NewRun, Store
from flovyn_nb.store.catalog import FireSchedule, ScheduleRow

T0 = 1_900_000_000.0


def schedule(name: str = "s", *, cron: str = "0 * * * *", next_fire: float = T0) -> ScheduleRow:
    return ScheduleRow(name, "k", cron, json.dumps(3), "q", "all", False, next_fire, None, T0)


def fire(store: Store, expected: float | None, slot: float, workflow_id: str) -> list[str] | None:
    run = new_run(workflow_id)
    run = NewRun(**{**{f: getattr(run, f) for f in run.__slots__}, "queue": "q"})
    return store.fire_schedule(
        FireSchedule("s", expected, slot, slot + 3600, [(run, event(run.execution_id, 1))])
    )


def test_a_schedule_is_recorded_and_redefining_it_keeps_what_it_fired(store: Store) -> None:
    assert store.put_schedule(schedule()) == schedule()
    assert fire(store, None, T0, "sched-s-1") == ["sched-s-1"]
    again = store.put_schedule(schedule(next_fire=T0 + 99))
    assert (again.last_slot, again.next_fire) == (T0, T0 + 3600)  # same cron: kept
    changed = store.put_schedule(schedule(cron="*/5 * * * *", next_fire=T0 + 300))
    assert (changed.cron, changed.last_slot, changed.next_fire) == ("*/5 * * * *", T0, T0 + 300)
    assert [s.name for s in store.list_schedules()] == ["s"]


def test_a_slot_fires_once_whoever_races_for_it(make_store: StoreFactory) -> None:
    one, other = make_store(), make_store()
    one.put_schedule(schedule())
    assert fire(one, None, T0, "sched-s-a") == ["sched-s-a"]
    assert fire(other, None, T0, "sched-s-a") is None  # it moved on: compare-and-set fails
    [row] = other.list_schedules()
    assert (row.last_slot, row.next_fire) == (T0, T0 + 3600)
    run = one.find_run("sched-s-a")
    assert run is not None and run.owner is None and run.queue == "q"
    # A run id that exists already is skipped, the schedule still moves on.
    assert fire(other, T0, T0 + 3600, "sched-s-a") == []


def test_pause_resume_and_delete(store: Store) -> None:
    store.put_schedule(schedule())
    fire(store, None, T0, "sched-s-1")
    store.pause_schedule("s", True, next_fire=None)
    assert fire(store, T0, T0 + 3600, "sched-s-2") is None  # paused: nothing fires
    store.pause_schedule("s", False, next_fire=T0 + 7200)
    [row] = store.list_schedules()
    assert (row.paused, row.last_slot, row.next_fire) == (False, None, T0 + 7200)
    store.delete_schedule("s")
    assert store.list_schedules() == []
    with pytest.raises(InvalidInput, match="no schedule named 's'"):
        store.delete_schedule("s")
    with pytest.raises(InvalidInput, match="no schedule named 'x'"):
        store.pause_schedule("x", True, next_fire=None)
