"""Replay checks the order of commands, not just their count (in-process restarts)."""

from __future__ import annotations

from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.model import RunStatus
from flovyn_nb.testing import wait_until


@fn.task(name="r-prepare")
def prepare() -> str:
    return "prepared"


def test_swapped_commands_are_a_determinism_violation(store_path: Path) -> None:
    @fn.workflow(name="r-swap")
    async def original(ctx: fn.WorkflowContext) -> str:
        await ctx.schedule(prepare)
        ctx.set("phase", "asked")
        return await ctx.promise("go")

    fn.start(store_path)
    fn.start_workflow("r-swap", workflow_id="swap-1")
    wait_until(lambda: fn.pending_promises("swap-1"))
    fn.stop()

    @fn.workflow(name="r-swap")
    async def swapped(ctx: fn.WorkflowContext) -> str:
        ctx.set("phase", "asked")  # history has the task first
        await ctx.schedule(prepare)
        return await ctx.promise("go")

    fn.start(store_path)
    with pytest.raises(fn.WorkflowFailed, match="DeterminismViolation") as info:
        fn.get_handle("swap-1").result(timeout=10)
    message = info.value.cause["message"]
    assert "at step 1 history recorded schedule(task 'r-prepare')" in message
    assert "but the code now issued set('phase')" in message
    assert fn.get_run("swap-1").status is RunStatus.FAILED
