"""Issue 15 in the panels: "Check replay", "Debug in a cell" and reused steps."""

from __future__ import annotations

from typing import Any

import pytest
from test_widgets import (  # noqa: F401 (fixtures)
    _interactive_mode,
    click,
    comms,
    shown,
    waiting,
)

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.widgets import Dashboard, RunPanel


@fn.task(name="wd-divide")
def divide(n: int) -> float:
    return 10 / n


@fn.task(name="wd-cached", cache=True)
def cached(n: int) -> int:
    return n * 3


@fn.workflow(name="wd-flow")
async def flow(ctx: fn.WorkflowContext, n: int) -> float:
    await ctx.schedule(cached, 1)
    return float(await ctx.schedule(divide, n))


@fn.workflow(name="wd-waits")
async def waits(ctx: fn.WorkflowContext) -> str:
    return str(await ctx.promise("go"))


def _steps(data: dict[str, Any]) -> list[tuple[str, str, Any]]:
    return [(s["name"], s["status"], s["debug_line"]) for s in data["steps"]]


@pytest.mark.usefixtures("comms")
def test_a_failed_task_step_offers_the_line_that_debugs_it(engine: Runtime) -> None:
    with pytest.raises(fn.WorkflowFailed):
        fn.start_workflow(flow, 0, workflow_id="wd 1").result(timeout=30)
    panel = RunPanel("wd 1")
    data = shown(panel, lambda d: d["status"] == "FAILED", "panel never showed FAILED")
    assert _steps(data) == [
        ("wd-cached", "COMPLETED", None),
        ("wd-divide", "FAILED", "%flovyn debug 'wd 1' 2"),
    ]
    # ... and a second run reuses the cached step: its row says so.
    with pytest.raises(fn.WorkflowFailed):
        fn.start_workflow(flow, 0, workflow_id="wd-2").result(timeout=30)
    second = RunPanel("wd-2")
    data = shown(second, lambda d: d["status"] == "FAILED", "panel never showed FAILED")
    assert data["steps"][0]["detail"] == "3 (reused from wd 1)"


@pytest.mark.usefixtures("comms")
def test_check_replay_button_replays_the_run_on_the_current_code(engine: Runtime) -> None:
    fn.start_workflow(waits, workflow_id="wd-check")
    waiting("wd-check")
    panel = RunPanel("wd-check")
    assert shown(panel, lambda d: d["status"] == "WAITING", "not waiting")["check"] == {}
    click(panel, action="check_replay", workflow_id="wd-check")
    data = shown(panel, lambda d: d["check"].get("busy") is False, "no check result")
    assert data["check"]["ok"] is True
    assert data["check"]["text"].startswith("wd-check: replays OK (1 step(s)")

    @fn.workflow(name="wd-waits")
    async def changed(ctx: fn.WorkflowContext) -> str:
        return str(await ctx.promise("go-now"))

    board = Dashboard()
    click(board, action="select", workflow_id="wd-check")
    click(board, action="check_replay", workflow_id="wd-check")
    data = shown(
        board,
        lambda d: d.get("detail") and d["detail"]["check"].get("busy") is False,
        "no check result on the dashboard",
    )
    assert data["detail"]["check"]["ok"] is False
    assert data["detail"]["check"]["text"] == (
        "wd-check: breaks at step 1: history recorded promise('go'), "
        "the code now issues promise('go-now')"
    )
    fn.resolve_promise("wd-check", "go", 1)
    del changed
