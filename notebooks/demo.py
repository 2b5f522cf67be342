"""`make demo`: start a workflow, answer its approval, print the run's history.

Runs on the embedded default store (./.flovyn/flovyn.duckdb, or FLOVYN_NB_STORE).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pydantic

import flovyn_nb as fn


class Order(pydantic.BaseModel):
    id: int
    items: list[str]


class Decision(pydantic.BaseModel):
    approved: bool
    by: str


@fn.task(name="fetch-prices", retry_policy=fn.RetryPolicy(max_attempts=3))
def fetch_prices(order: Order) -> dict[str, float]:
    print(f"pricing {len(order.items)} items")
    return {item: 9.5 + i for i, item in enumerate(order.items)}


@fn.task(name="publish")
def publish(total: float) -> str:
    return f"published invoice of {total:.2f}"


@fn.workflow(name="order-approval")
async def order_approval(ctx: fn.WorkflowContext, order: Order) -> str:
    prices = await ctx.schedule(fetch_prices, order)
    total = sum(prices.values())
    ctx.logger.info("order %d costs %.2f; asking for approval", order.id, total)
    decision = await ctx.promise("approval", timeout=timedelta(hours=4), type_hint=Decision)
    if not decision.approved:
        return f"rejected by {decision.by}"
    return await ctx.schedule(publish, total)


def main() -> None:
    with fn.start() as engine:
        workflow_id = f"order-{int(time.time())}"
        handle = fn.start_workflow(
            order_approval, Order(id=42, items=["a", "b"]), workflow_id=workflow_id
        )
        while not fn.pending_promises(workflow_id):
            time.sleep(0.01)
        [promise] = fn.pending_promises(workflow_id)
        print(
            f"run {workflow_id} waits for {promise.name!r} (times out at {promise.timeout_at:%H:%M} UTC)"
        )
        fn.resolve_promise(workflow_id, "approval", Decision(approved=True, by="demo"))
        print("result:", handle.result(timeout=30))
        run = fn.get_run(workflow_id)
        print(f"\nhistory of {workflow_id} ({run.status.value}) in {engine.store.path}:")
        start = run.events[0].ts
        for event in run.events:
            offset = (event.ts - start).total_seconds() * 1000
            print(f"  {event.seq:>2}  +{offset:7.1f} ms  {event.type.value}")
        print("\nstep logs:")
        for entry in fn.run_logs(workflow_id):
            print(f"  [{entry.stream}] {entry.message}")


if __name__ == "__main__":
    main()
