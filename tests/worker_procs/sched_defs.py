"""A scheduled workflow for the two-worker race of tests/test_worker.py: each run appends
its process id to ``$FLOVYN_TEST_EFFECTS/<workflow id>``."""

from __future__ import annotations

from worker_defs import effect

import flovyn_nb as fn


@fn.task(name="sw-note")
def note(workflow_id: str) -> None:
    effect(workflow_id)


@fn.workflow(name="sw-ping")
async def ping(ctx: fn.WorkflowContext, n: int) -> int:
    await ctx.schedule(note, ctx.workflow_id)
    return n
