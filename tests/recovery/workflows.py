"""Workflows and tasks shared by tests/test_recovery.py and the processes it kills.

Both sides import this module, so a run started by a worker process is recovered by an
engine that has the very same definitions (same names, same source). Every task appends
its name to the side-effect file named by ``SIDE_EFFECTS_ENV``: counting lines tells how
often a task really ran. A task whose name is in ``HANG_ENV`` blocks forever, which is how
a worker is caught mid-step; only the worker process sets that variable.
"""

from __future__ import annotations

import os
import threading
from datetime import timedelta
from typing import Any

import flovyn_nb as fn
from flovyn_nb import PromiseTimeout, SyncWorkflowContext, TaskContext, WorkflowContext
from flovyn_nb.definitions import WorkflowDefinition

SIDE_EFFECTS_ENV = "FLOVYN_TEST_SIDE_EFFECTS"
HANG_ENV = "FLOVYN_TEST_HANG_IN"

STEP = "recovery-step"
OTHER_STEP = "recovery-other-step"


def side_effect(line: str) -> None:
    with open(os.environ[SIDE_EFFECTS_ENV], "a", encoding="utf-8") as file:
        file.write(line + "\n")


@fn.task(name=STEP)
def step(name: str) -> str:
    side_effect(name)
    if name in os.environ.get(HANG_ENV, "").split(","):
        threading.Event().wait()  # the test kills this process here
    return name.upper()


@fn.task(name=OTHER_STEP)
def other_step(name: str) -> str:
    side_effect(f"other:{name}")
    return name.upper()


# -- 1. tasks ------------------------------------------------------------------------------


@fn.workflow(name="recovery-pipeline")
async def pipeline(ctx: WorkflowContext, names: list[str]) -> list[str]:
    return [await ctx.schedule(step, name) for name in names]


@fn.workflow(name="recovery-sync-pipeline")
def sync_pipeline(ctx: SyncWorkflowContext, names: list[str]) -> list[str]:
    return [ctx.schedule(step, name) for name in names]


def define_late_pipeline(kind: str) -> WorkflowDefinition[Any]:
    """The pipeline under another name, registered only when this is called."""

    async def late_pipeline(ctx: WorkflowContext, names: list[str]) -> list[str]:
        return [await ctx.schedule(step, name) for name in names]

    return fn.workflow(name=kind)(late_pipeline)


@fn.workflow(name="recovery-deterministic")
async def deterministic(ctx: WorkflowContext) -> dict[str, Any]:
    """Values a replay must reproduce exactly: recorded time, seeded randomness, ctx.run."""
    started = ctx.current_time().isoformat()
    token = str(ctx.random_uuid())
    dice = ctx.random()

    def pick() -> int:
        side_effect("pick")
        return int.from_bytes(os.urandom(4), "big")

    picked = await ctx.run("pick", pick)
    await ctx.schedule(step, f"use-{token}-{picked}-{dice}")
    await ctx.schedule(step, "finish")
    return {"started": started, "token": token, "dice": dice, "picked": picked}


# -- 2. timers -----------------------------------------------------------------------------


@fn.workflow(name="recovery-sleeper")
async def sleeper(ctx: WorkflowContext, seconds: float) -> str:
    await ctx.schedule(step, "before")
    await ctx.sleep(seconds)
    await ctx.schedule(step, "after")
    return "woke"


RETRY_INTERVAL = 600.0  # the test recovers on virtual time half-way through it


@fn.task(
    name="recovery-flaky",
    retry_policy=fn.RetryPolicy(
        max_attempts=3, initial_interval=timedelta(seconds=RETRY_INTERVAL), jitter=0
    ),
)
def flaky(ctx: TaskContext, name: str) -> str:
    side_effect(f"{name}#{ctx.attempt}")
    if ctx.attempt == 1:
        raise RuntimeError("the first attempt always fails")
    return name.upper()


@fn.workflow(name="recovery-retry")
async def retrying(ctx: WorkflowContext, name: str) -> str:
    result: str = await ctx.schedule(flaky, name)
    return result


@fn.workflow(name="recovery-sync-sleeper")
def sync_sleeper(ctx: SyncWorkflowContext, seconds: float) -> str:
    ctx.schedule(step, "before")
    ctx.sleep(seconds)
    ctx.schedule(step, "after")
    return "woke"


# -- 3. promises ---------------------------------------------------------------------------


@fn.workflow(name="recovery-approval")
async def approval(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    prepared = await ctx.schedule(step, f"prepare-{order}")
    decision = await ctx.promise("approve", type_hint=dict[str, Any])
    shipped = await ctx.schedule(step, f"ship-{order}")
    return {"prepared": prepared, "decision": decision, "shipped": shipped}


@fn.workflow(name="recovery-deadline")
async def deadline(ctx: WorkflowContext, seconds: float) -> str:
    await ctx.schedule(step, "asked")
    try:
        await ctx.promise("answer", timeout=seconds)
    except PromiseTimeout:
        await ctx.schedule(step, "gave-up")
        return "timed out"
    return "answered"


@fn.workflow(name="recovery-parent")
async def parent(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    await ctx.schedule(step, f"parent-{order}")
    child = await ctx.schedule_workflow(approval, order)
    return {"child": child}


@fn.workflow(name="recovery-signals")
async def signals(ctx: WorkflowContext) -> list[str]:
    first = await ctx.wait_for_signal("note")
    await ctx.schedule(step, f"got-{first}")
    second = await ctx.wait_for_signal("note")
    return [first, second]


# -- 5. golden histories (tests/histories/*.json record this workflow) ---------------------


@fn.workflow(name="golden-order")
async def golden_order(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    reserved = await ctx.schedule(step, f"reserve-{order}")
    await ctx.set("reserved", reserved)
    await ctx.sleep(0.05)
    first = ctx.schedule_async(step, f"pack-{order}-1")
    second = ctx.schedule_async(step, f"pack-{order}-2")
    packed = [await first, await second]
    decision = await ctx.promise("approve", type_hint=dict[str, Any])
    shipped = await ctx.schedule(step, f"ship-{order}")
    return {
        "reserved": await ctx.get("reserved"),
        "packed": packed,
        "decision": decision,
        "shipped": shipped,
    }
