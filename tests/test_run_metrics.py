"""``client.run_metrics``: every run of the window counts, aggregated by the store's SQL, on
DuckDB and PostgreSQL alike (the server's ``GET metrics`` answers with it)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime, client
from flovyn_nb.errors import InvalidInput

RUNS = 130  # more than any sample of the newest runs (the server once used the newest 100)


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    return store_target


@fn.task(name="rm-square")
def square(x: int) -> int:
    return x * x


@fn.task(name="rm-refuse")
def refuse(x: int) -> int:
    raise ValueError(f"no {x}")


@fn.workflow(name="rm-child")
async def child(ctx: fn.WorkflowContext, x: int) -> int:
    return int(await ctx.schedule(square, x))


@fn.workflow(name="rm-parent")
async def parent(ctx: fn.WorkflowContext, x: int) -> int:
    a = await ctx.schedule(square, x)
    b = await ctx.schedule_workflow(child, x + 1)
    return int(a + b)


@fn.workflow(name="rm-breaker")
async def breaker(ctx: fn.WorkflowContext, x: int) -> int:
    return int(await ctx.schedule(refuse, x))


def test_every_run_of_the_window_counts(engine: Runtime) -> None:
    handles = [fn.start_workflow(parent, i, workflow_id=f"rm-p-{i}") for i in range(RUNS)]
    bad = [fn.start_workflow(breaker, i, workflow_id=f"rm-b-{i}") for i in range(3)]
    for h in handles:
        h.result(timeout=120)
    for h in bad:
        with pytest.raises(fn.WorkflowFailed):
            h.result(timeout=60)

    metrics = client.run_metrics(days=7)
    today = datetime.now(UTC).date()
    assert metrics.since.date() <= today
    assert metrics.runs == 2 * RUNS + 3  # parents, their children, breakers
    per_day = {(d.day, d.workflow): d.count for d in metrics.runs_per_day}
    assert per_day == {
        (today, "rm-parent"): RUNS, (today, "rm-child"): RUNS, (today, "rm-breaker"): 3
    }  # fmt: skip
    rates = {r.workflow: (r.finished, r.failed) for r in metrics.failure_rates}
    assert rates == {"rm-parent": (RUNS, 0), "rm-child": (RUNS, 0), "rm-breaker": (3, 3)}
    steps = {(s.workflow, s.step, s.kind): s for s in metrics.step_durations}
    assert set(steps) == {
        ("rm-parent", "rm-square", "task"),
        ("rm-parent", "rm-child", "child"),
        ("rm-child", "rm-square", "task"),
        ("rm-breaker", "rm-refuse", "task"),
    }
    for item in steps.values():
        assert 0 <= item.p50_ms <= item.p90_ms <= item.p99_ms <= item.max_ms
        assert sum(n for _, n in item.histogram) == item.count
        assert [upper for upper, _ in item.histogram] == sorted(u for u, _ in item.histogram)
    assert steps[("rm-parent", "rm-square", "task")].count == RUNS
    assert steps[("rm-parent", "rm-child", "child")].count == RUNS
    assert steps[("rm-breaker", "rm-refuse", "task")].count == 3


def test_the_window_is_whole_days_up_to_now(engine: Runtime) -> None:
    with pytest.raises(fn.WorkflowFailed):
        fn.start_workflow(breaker, 1, workflow_id="rm-w-1").result(timeout=60)
    later = time.time() + 3 * 86400  # three days on, the run is three days old
    assert client.run_metrics(days=3, now=later).runs == 0
    four = client.run_metrics(days=4, now=later)
    assert four.runs == 1 and [r.workflow for r in four.failure_rates] == ["rm-breaker"]
    assert four.since.timestamp() % 86400 == 0  # from a midnight (UTC)


@pytest.mark.parametrize("days", [0, 367, True])
def test_days_out_of_range_is_refused(engine: Runtime, days: int) -> None:
    with pytest.raises(InvalidInput, match="days must be a whole number from 1 to 366"):
        client.run_metrics(days=days)
