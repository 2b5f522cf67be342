"""What a run panel shows (issue 16, item 4): a retried step's result and every attempt,
children told apart by their input, the raw history for the "events" tab."""

from __future__ import annotations

from pathlib import Path

import flovyn_nb as fn
from flovyn_nb.widgets.panel import events_json
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
