"""Durable timers, and virtual time for tests."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.engine.engine import Engine
from flovyn_nb.model import EventType
from flovyn_nb.testing import FakeClock


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every engine test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


@fn.workflow(name="t-sleepy")
async def sleepy(ctx: fn.WorkflowContext, seconds: float) -> str:
    await ctx.sleep(timedelta(seconds=seconds))
    await ctx.sleep_until(ctx.current_time() + timedelta(seconds=seconds))
    return "awake"


def _fired_lateness(workflow_id: str) -> list[float]:
    events = fn.get_run(workflow_id).events
    starts = {e.payload["timerId"]: e for e in events if e.type is EventType.TIMER_STARTED}
    fired = [e for e in events if e.type is EventType.TIMER_FIRED]
    assert len(fired) == len(starts) == 2
    return [
        e.ts.timestamp()
        - datetime.fromisoformat(starts[e.payload["timerId"]].payload["fireAt"]).timestamp()
        for e in fired
    ]


def test_timers_fire_and_never_before_their_deadline(engine: Engine) -> None:
    """How late a timer fires is a figure of ``make bench`` (timer_lateness), not a test."""
    started = time.monotonic()
    assert fn.start_workflow(sleepy, 0.15, workflow_id="t-1").result(timeout=30) == "awake"
    assert time.monotonic() - started >= 0.3
    for lateness in _fired_lateness("t-1"):
        assert lateness >= 0, f"timer fired {-lateness * 1000:.1f} ms early"


def test_days_of_sleep_take_milliseconds_on_a_fake_clock(
    fake_engine: Engine, clock: FakeClock
) -> None:
    before = clock.now()
    h = fn.start_workflow(sleepy, timedelta(days=3).total_seconds(), workflow_id="t-days")
    assert h.result(timeout=30) == "awake"  # six days of sleep: only on the fake clock
    assert clock.now() - before >= timedelta(days=6).total_seconds()
    assert _fired_lateness("t-days") == [pytest.approx(0, abs=0.01)] * 2


def test_sleep_arguments_are_checked(engine: Engine) -> None:
    @fn.workflow(name="t-bad-sleep")
    async def bad(ctx: fn.WorkflowContext) -> None:
        await ctx.sleep_until(datetime(2030, 1, 1))  # naive: ambiguous

    with pytest.raises(fn.WorkflowFailed, match="timezone-aware"):
        fn.start_workflow(bad).result(timeout=30)

    @fn.workflow(name="t-past")
    async def past(ctx: fn.WorkflowContext) -> str:
        await ctx.sleep_until(datetime(2000, 1, 1, tzinfo=UTC))  # already due: returns
        return "ok"

    assert fn.start_workflow(past).result(timeout=30) == "ok"
