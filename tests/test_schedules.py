"""Cron schedules: fired at their slots by the deadline queue (a FakeClock makes it
milliseconds), once per slot, missed slots per catch-up, pause and resume, bad crons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.errors import InvalidInput
from flovyn_nb.testing import FakeClock, temporary_engine, wait_until


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


START = datetime(2030, 1, 1, tzinfo=UTC)


@fn.workflow(name="sc-tick")
async def tick(ctx: fn.WorkflowContext, n: int) -> int:
    return n + 1


@fn.workflow(name="sc-daily", schedule="0 6 * * *")
async def daily(ctx: fn.WorkflowContext) -> str:
    return "morning"


def _schedule(name: str) -> client.ScheduleInfo:
    [found] = [s for s in client.list_schedules() if s.name == name]
    return found


def _slots(prefix: str) -> list[str]:
    runs = [r.workflow_id for r in fn.list_runs() if r.workflow_id.startswith(prefix)]
    return sorted(runs)


def test_a_schedule_fires_once_per_slot_at_its_time(store_path: Path) -> None:
    clock = FakeClock(autojump=False, start=START)
    with temporary_engine(store=store_path, clock=clock):
        info = fn.schedule(tick, cron="*/5 * * * *", input=41, name="five")
        assert info.next_fire == START + timedelta(minutes=5)
        for n in range(1, 4):
            clock.advance(timedelta(minutes=5))
            wait_until(lambda n=n: len(_slots("sched-five-")) == n, timeout=60)  # type: ignore[misc]
        assert _slots("sched-five-") == [
            "sched-five-2030-01-01T00:05:00Z",
            "sched-five-2030-01-01T00:10:00Z",
            "sched-five-2030-01-01T00:15:00Z",
        ]
        assert fn.get_handle("sched-five-2030-01-01T00:05:00Z").result(timeout=60) == 42
        assert _schedule("five").last_slot == START + timedelta(minutes=15)


def test_a_decorated_workflow_records_its_schedule(store_path: Path) -> None:
    clock = FakeClock(autojump=True, start=START)
    with temporary_engine(store=store_path, clock=clock):
        [row] = [s for s in client.list_schedules() if s.name == "sc-daily"]
        assert (row.cron, row.kind, row.paused) == ("0 6 * * *", "sc-daily", False)
        handle = wait_until(lambda: _slots("sched-sc-daily-2030-01-01T06:00:00Z"), timeout=60)
        assert fn.get_handle(handle[0]).result(timeout=60) == "morning"
    with pytest.raises(InvalidInput, match="bad cron expression '0 25 \\* \\* \\*'"):
        fn.workflow(name="sc-bad", schedule="0 25 * * *")(daily.fn)


@pytest.mark.parametrize(("catch_up", "expected"), [("none", 0), ("one", 1), ("all", 6)])
def test_slots_missed_while_nothing_ran_follow_catch_up(
    store_path: Path, catch_up: str, expected: int
) -> None:
    with temporary_engine(store=store_path, clock=FakeClock(autojump=False, start=START)):
        fn.schedule(tick, cron="0 * * * *", input=0, name="hourly", catch_up=catch_up)
    # Down for six and a half hours: slots 01:00 … 06:00 were missed.
    later = FakeClock(autojump=False, start=START + timedelta(hours=6, minutes=30))
    with temporary_engine(store=store_path, clock=later):
        wait_until(
            lambda: (s := _schedule("hourly")).last_slot is not None and s.last_slot.hour == 6,
            timeout=60,
        )
        fired = _slots("sched-hourly-")
        assert len(fired) == expected
        if expected:
            assert fired[-1] == "sched-hourly-2030-01-01T06:00:00Z"
        info = _schedule("hourly")
        assert info.next_fire == START + timedelta(hours=7)


def test_pause_skips_slots_and_resume_fires_from_the_next_one(store_path: Path) -> None:
    clock = FakeClock(autojump=False, start=START)
    with temporary_engine(store=store_path, clock=clock):
        fn.schedule(tick, cron="0 * * * *", input=1, name="p", catch_up="all")
        client.pause_schedule("p")
        clock.advance(timedelta(hours=3))
        assert _schedule("p").paused
        client.resume_schedule("p")
        assert _schedule("p").next_fire == START + timedelta(hours=4)
        assert _slots("sched-p-") == []
        clock.advance(timedelta(hours=1))
        wait_until(lambda: _slots("sched-p-"), timeout=60)
        assert _slots("sched-p-") == ["sched-p-2030-01-01T04:00:00Z"]
        client.delete_schedule("p")
        assert [s.name for s in client.list_schedules()] == ["sc-daily"]


def test_bad_schedules_are_one_clear_error_and_record_nothing(store_path: Path) -> None:
    with temporary_engine(store=store_path, clock=FakeClock(autojump=False, start=START)):
        with pytest.raises(InvalidInput, match="bad cron expression 'every day'"):
            fn.schedule(tick, cron="every day", input=1)
        with pytest.raises(InvalidInput, match="catch_up must be one of none, one, all"):
            fn.schedule(tick, cron="0 * * * *", input=1, catch_up="some")
        with pytest.raises(InvalidInput, match="sc-tick"):
            fn.schedule(tick, cron="0 * * * *", input="not a number")
        with pytest.raises(InvalidInput, match="no schedule named 'nope'"):
            client.pause_schedule("nope")
        assert [s.name for s in client.list_schedules()] == ["sc-daily"]
