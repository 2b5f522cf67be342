"""What a run panel shows (issue 16, item 4): a retried step's result and every attempt,
children told apart by their input, the raw history for the "events" tab."""

from __future__ import annotations

from pathlib import Path

import flovyn_nb as fn
from flovyn_nb.widgets.panel import events_json, run_source
from flovyn_nb.widgets.render import run_json
from flovyn_nb.widgets.state import LogBook, RunState, store_key


def test_a_retried_step_shows_its_result_and_every_attempt(tmp_path: Path) -> None:
    tries: list[int] = []

    @fn.task(name="flaky", retry_policy=fn.RetryPolicy(max_attempts=3, initial_interval=0.01))
    def flaky(n: int) -> int:
        tries.append(n)
        if len(tries) == 1:
            raise ValueError("first try fails")
        return n * 10

    @fn.workflow(name="child-of")
    async def child(ctx: fn.WorkflowContext, region: str) -> str:
        return region.upper()

    @fn.workflow(name="retrying")
    async def retrying(ctx: fn.WorkflowContext) -> int:
        await ctx.schedule_workflow(child, "emea")
        return await ctx.schedule(flaky, 4)

    store = tmp_path / "s.duckdb"
    with fn.start(store):
        assert fn.start_workflow(retrying, workflow_id="r-1").result(timeout=60) == 40
        state = RunState("r-1", store_key(store))
        state.refresh(bell=True)
        assert state.view is not None
        data = run_json(state.view, LogBook(), {}, None, now=0.0)
        history = events_json(state)
    [task] = [s for s in data["steps"] if s["kind"] == "task"]
    assert task["status"] == "COMPLETED"
    assert task["error"] is None  # no red error on a step that succeeded
    assert task["detail"] == "40"
    assert [(a["number"], a["status"], a["error"]) for a in task["attempt_list"]] == [
        (1, "FAILED", "ValueError: first try fails"),
        (2, "COMPLETED", None),
    ]
    [kid] = [s for s in data["steps"] if s["kind"] == "child"]
    assert kid["detail"].startswith('input "emea" · ')
    assert kid["child"] == kid["detail"].rsplit(" · ", 1)[1]
    types = [e["type"] for e in history["items"]]
    assert history["total"] == len(types) and types[0] == "WORKFLOW_STARTED"
    assert "TASK_RETRY_SCHEDULED" in types and types[-1] == "WORKFLOW_COMPLETED"


def test_the_source_tab_shows_the_code_each_run_started_with(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"

    @fn.workflow(name="versioned")
    async def first(ctx: fn.WorkflowContext) -> str:
        return "version one"

    with fn.start(store):
        assert fn.start_workflow(first, workflow_id="v-1").result(timeout=60) == "version one"

    @fn.workflow(name="versioned")
    async def second(ctx: fn.WorkflowContext) -> str:
        return "version two"

    with fn.start(store):
        assert fn.start_workflow(second, workflow_id="v-2").result(timeout=60) == "version two"
    sources = {}
    for workflow_id in ("v-1", "v-2"):
        state = RunState(workflow_id, store_key(store))
        state.refresh(bell=True)
        sources[workflow_id] = run_source(state, store_key(store))
    # Each run's own version, though the store's latest is the second.
    assert sources["v-1"] is not None and '"version one"' in sources["v-1"]
    assert "version two" not in sources["v-1"]
    assert sources["v-2"] is not None and '"version two"' in sources["v-2"]


def test_the_source_tab_says_when_the_source_is_not_recorded(tmp_path: Path) -> None:
    store = tmp_path / "s.duckdb"

    @fn.workflow(name="forgotten")
    async def forgotten(ctx: fn.WorkflowContext) -> int:
        return 1

    with fn.start(store):
        assert fn.start_workflow(forgotten, workflow_id="f-1").result(timeout=60) == 1
        state = RunState("f-1", store_key(store))
        state.refresh(bell=True)
    assert state.view is not None and state.view.source_hash  # recorded at its start
    assert run_source(state, store_key(store)) is not None
    state.view.source_hash = "0" * 16  # a hash whose definition the store lacks
    assert run_source(state, store_key(store)) is None
