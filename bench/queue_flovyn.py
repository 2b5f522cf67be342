"""The queue-throughput workflow for flovyn_nb workers (``flovyn-nb worker bench.queue_flovyn``).

Its own module so a worker imports only flovyn_nb (not DBOS, not the other bench flows).
"""

from __future__ import annotations

import flovyn_nb as fn

KIND = "bench.queue_three_steps"


@fn.task(name="bench.queue_noop")
def queue_noop() -> None:
    return None


@fn.workflow(name=KIND)
async def three_steps(ctx: fn.WorkflowContext, value: int) -> int:
    for _ in range(3):
        await ctx.schedule(queue_noop)
    return value
