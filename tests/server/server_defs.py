"""Workflows the server tests record runs of (in the test process and in helpers)."""

from __future__ import annotations

import flovyn_nb as fn


@fn.task
def double(x: int) -> int:
    print(f"doubling {x}")  # a captured log line of the step
    return 2 * x


@fn.task
def explode(x: int) -> int:
    raise ValueError(f"cannot take {x}")


@fn.workflow(name="doubler")
async def doubler(ctx: fn.WorkflowContext, x: int) -> int:
    return int(await ctx.schedule(double, x))


@fn.workflow(name="breaker")
async def breaker(ctx: fn.WorkflowContext, x: int) -> int:
    return int(await ctx.schedule(explode, x))


@fn.workflow(name="approval")
async def approval(ctx: fn.WorkflowContext, x: int) -> str:
    ok = await ctx.promise("approve", type_hint=bool)
    return "approved" if ok else "declined"
