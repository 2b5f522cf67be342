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
        await ctx.set("phase", "asked")
        return await ctx.promise("go")

    fn.start(store_path)
    fn.start_workflow("r-swap", workflow_id="swap-1")
    wait_until(lambda: fn.pending_promises("swap-1"))
    fn.stop()

    @fn.workflow(name="r-swap")
    async def swapped(ctx: fn.WorkflowContext) -> str:
        await ctx.set("phase", "asked")  # history has the task first
        await ctx.schedule(prepare)
        return await ctx.promise("go")

    fn.start(store_path)
    with pytest.raises(fn.WorkflowFailed, match="DeterminismViolation") as info:
        fn.get_handle("swap-1").result(timeout=30)
    message = info.value.cause["message"]
    assert "at step 1 history recorded schedule(task 'r-prepare')" in message
    assert "but the code now issued set('phase')" in message
    assert fn.get_run("swap-1").status is RunStatus.FAILED


def test_a_replay_waits_for_definitions_that_are_not_there_yet(store_path: Path) -> None:
    """After a restart, cells may run in another order: the workflow before its task."""

    @fn.task(name="r-double")
    def double(n: int) -> int:
        return 2 * n

    @fn.workflow(name="r-order")
    async def uses_double(ctx: fn.WorkflowContext, n: int) -> int:
        first = await ctx.schedule(r_double, n)  # noqa: F821 (a global, like a notebook's)
        return first + await ctx.promise("more", type_hint=int)

    globals()["r_double"] = double
    fn.start(store_path)
    fn.start_workflow(uses_double, 4, workflow_id="order-1")
    wait_until(lambda: fn.pending_promises("order-1"))
    fn.stop()

    del globals()["r_double"]  # "restart": the task's cell has not run yet
    fn.start(store_path)  # the workflow is registered: replay starts and meets a NameError
    wait_until(lambda: fn.get_run("order-1", events=False).owner is None, message="not parked")
    assert fn.get_run("order-1").status is RunStatus.WAITING
    assert any("replay paused: NameError" in e.message for e in fn.run_logs("order-1"))

    globals()["r_double"] = fn.task(name="r-double")(double.fn)  # now the task cell runs
    wait_until(lambda: fn.get_run("order-1", events=False).owner is not None, message="not resumed")
    fn.resolve_promise("order-1", "more", 1)
    assert fn.get_handle("order-1").result(timeout=30) == 9
