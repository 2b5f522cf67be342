"""Issue 15 on the run panel (mock comm, no browser): the Retry button of a failed run
and the "Fork from here" action of a step row; the panel follows the retried run."""

from __future__ import annotations

from typing import Any

import pytest
from test_widgets import RecordingComm, click, comms, sent_data, shown  # noqa: F401

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.widgets import RunPanel

state = {"fixed": False, "runs": 0}


@fn.task(name="pr-load")
def load(n: int) -> int:
    state["runs"] += 1
    return n


@fn.task(name="pr-check")
def check(n: int) -> int:
    if not state["fixed"]:
        raise ValueError(f"{n} is not accepted yet")
    return n * 2


@fn.workflow(name="pr-flow")
async def flow(ctx: fn.WorkflowContext, n: int) -> int:
    loaded = await ctx.schedule(load, n)
    return int(await ctx.schedule(check, loaded))


@pytest.fixture(autouse=True)
def _reset() -> None:
    state.update(fixed=False, runs=0)


def test_retry_button_and_fork_from_a_step_row(
    engine: Runtime,
    comms: list[RecordingComm],  # noqa: F811
) -> None:
    h = fn.start_workflow(flow, 5, workflow_id="pr-1")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    panel = RunPanel("pr-1")
    data = shown(panel, lambda d: d["status"] == "FAILED", "panel never showed FAILED")
    assert [s["number"] for s in data["steps"]] == [1, 2]
    state["fixed"] = True
    click(panel, action="retry", workflow_id="pr-1")  # handled in a worker thread
    shown(panel, lambda d: d["again"].get("retried"), "the retry never started")
    assert h.result(timeout=30) == 10
    done = shown(panel, lambda d: d["status"] == "COMPLETED", "the panel never showed it again")
    origin = (
        "attempt 1 failed: TaskFailed: task 'pr-check' failed after 1 attempt(s): "
        "ValueError: 5 is not accepted yet; attempt 2 ran again from step 2 (pr-check)"
    )
    assert done["origin"] == [origin]
    assert "  (attempt 1 failed: TaskFailed" in repr(panel)
    assert state["runs"] == 1  # the step before the failed one was reused

    click(panel, action="fork", workflow_id="pr-1", step=2)
    forked: dict[str, Any] = shown(
        panel, lambda d: d["again"].get("forked"), "the fork never started"
    )
    assert forked["again"]["forked"] == "pr-1-fork-1"
    assert fn.get_handle("pr-1-fork-1").result(timeout=30) == 10
    assert state["runs"] == 1
    click(panel, action="fork", workflow_id="pr-1", step=7)
    error = shown(panel, lambda d: d["again"].get("error"), "no error for a bad step")
    assert "step 7 is out of range" in error["again"]["error"]
    assert sent_data(panel)["status"] == "COMPLETED"
