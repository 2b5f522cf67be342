"""Workflows and tasks every engine process of tests/test_store.py registers.

Same names and same source in every process, so one process can take over another's runs.
"""

from __future__ import annotations

import os

from pydantic import BaseModel

import flovyn_nb as fn
from flovyn_nb import WorkflowContext


class Decision(BaseModel):
    approved: bool
    note: str = ""


@fn.task(name="store-test-inc")
def inc(value: int) -> int:
    return value + 1


@fn.workflow(name="store-test-approval")
async def approval(ctx: WorkflowContext, order: str) -> dict:
    decision = await ctx.promise("approval", type_hint=Decision)
    # Recorded after the promise: tells which process executed the end of the run.
    executor = await ctx.run("executor-pid", os.getpid)
    return {
        "order": order,
        "approved": decision.approved,
        "note": decision.note,
        "executor_pid": executor,
    }


@fn.workflow(name="store-test-two-step")
async def two_step(ctx: WorkflowContext) -> dict:
    decision = await ctx.promise("approval", type_hint=Decision)
    finish = await ctx.promise("finish")
    return {"approved": decision.approved, "note": decision.note, "finish": finish}


@fn.workflow(name="store-test-busy")
async def busy(ctx: WorkflowContext, steps: int) -> int:
    total = 0
    for _ in range(steps):
        total = await ctx.schedule(inc, total)
    return total
