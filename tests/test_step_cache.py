"""@task(cache=True) / cache_key=: a completed identical step is reused, not run again."""

from __future__ import annotations

from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.model import EventType

CALLS: dict[str, int] = {}


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@fn.task(name="sc-plain")
def plain(n: int) -> int:
    _count("plain")
    return n + 1


@fn.workflow(name="sc-flow")
async def flow(ctx: fn.WorkflowContext, n: int) -> list[int]:
    return [await ctx.schedule("sc-heavy", n), await ctx.schedule(plain, n)]


def _define_heavy(offset: int = 0) -> None:
    # A new function object: its source text differs with the offset's literal only when
    # the body differs, so redefinitions are made from different texts below.
    if offset == 0:

        @fn.task(name="sc-heavy", cache=True)
        def heavy(n: int) -> int:
            _count("heavy")
            return n * 100

    else:

        @fn.task(name="sc-heavy", cache=True)
        def heavy_changed(n: int) -> int:
            _count("heavy")
            return n * 100 + 1


def test_a_cached_step_is_reused_and_recorded_as_such(store_path: Path) -> None:
    _define_heavy()
    fn.start(store_path)
    CALLS.clear()
    assert fn.start_workflow(flow, 2, workflow_id="sc-1").result(timeout=30) == [200, 3]
    assert CALLS == {"heavy": 1, "plain": 1}

    CALLS.clear()
    assert fn.start_workflow(flow, 2, workflow_id="sc-2").result(timeout=30) == [200, 3]
    assert CALLS == {"plain": 1}  # the cached task did not run; the plain one did

    events = fn.get_run("sc-2").events
    completed = [e.payload for e in events if e.type is EventType.TASK_COMPLETED]
    source = fn.get_run("sc-1").events
    heavy_id = next(
        e.payload["taskExecutionId"]
        for e in source
        if e.type is EventType.TASK_SCHEDULED and e.payload["taskKind"] == "sc-heavy"
    )
    assert completed[0]["cachedFrom"] == {"workflowId": "sc-1", "taskExecutionId": heavy_id}
    assert "cachedFrom" not in completed[1]
    assert not any(
        e.type is EventType.TASK_STARTED
        and e.payload["taskExecutionId"] == completed[0]["taskExecutionId"]
        for e in events
    )
    record = fn.step_record("sc-2", "sc-heavy")
    assert record.output == 200 and record.cached_from["workflowId"] == "sc-1"
    assert record.attempts == ()

    # Another input runs again; so does a changed task source.
    CALLS.clear()
    assert fn.start_workflow(flow, 3, workflow_id="sc-3").result(timeout=30) == [300, 4]
    assert CALLS == {"heavy": 1, "plain": 1}
    _define_heavy(offset=1)
    CALLS.clear()
    assert fn.start_workflow(flow, 2, workflow_id="sc-4").result(timeout=30) == [201, 3]
    assert CALLS == {"heavy": 1, "plain": 1}


def test_cache_key_matches_steps_by_the_key_alone(store_path: Path) -> None:
    @fn.task(name="sc-keyed", cache_key=lambda d: d["id"])
    def keyed(d: dict[str, int]) -> int:
        _count("keyed")
        return d["id"] * 2

    @fn.workflow(name="sc-keyed-flow")
    async def keyed_flow(ctx: fn.WorkflowContext, d: dict[str, int]) -> int:
        return int(await ctx.schedule(keyed, d))

    fn.start(store_path)
    CALLS.clear()
    assert fn.start_workflow(keyed_flow, {"id": 1, "noise": 1}).result(timeout=30) == 2
    assert fn.start_workflow(keyed_flow, {"id": 1, "noise": 2}).result(timeout=30) == 2
    assert CALLS == {"keyed": 1}
    assert fn.start_workflow(keyed_flow, {"id": 2, "noise": 2}).result(timeout=30) == 4
    assert CALLS == {"keyed": 2}


def test_tasks_without_cache_run_every_time(store_path: Path) -> None:
    fn.start(store_path)
    _define_heavy()
    CALLS.clear()
    fn.start_workflow(flow, 5, workflow_id="nc-1").result(timeout=30)
    fn.start_workflow(flow, 5, workflow_id="nc-2").result(timeout=30)
    assert CALLS == {"heavy": 1, "plain": 2}
    assert not fn.step_record("nc-2", "sc-plain").cached_from


def test_a_bad_cache_key_is_refused(store_path: Path) -> None:
    with pytest.raises(fn.InvalidInput, match="cache_key must be a function"):
        fn.task(name="sc-bad", cache_key="id")(lambda: None)  # type: ignore[arg-type]
