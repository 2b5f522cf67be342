"""``flovyn_nb.testing``'s mock contexts (Flovyn's names): a workflow and a task tested
without an engine, with scripted results, promises, signals and a time controller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pydantic
import pytest

import flovyn_nb as fn
from flovyn_nb.testing import MockTaskContext, MockWorkflowContext, TimeController


class GreetInput(pydantic.BaseModel):
    name: str


class GreetOutput(pydantic.BaseModel):
    greeting: str


@fn.task(name="mk-greet")
class GreetTask:
    async def run(self, ctx: fn.TaskContext, input: GreetInput) -> GreetOutput:
        await ctx.report_progress(0.5, "greeting")
        for word in ("Hello", ", ", input.name):
            await ctx.stream_token(word)
        return GreetOutput(greeting=f"Hello, {input.name}!")


@fn.task(name="mk-sync")
def sync_task(ctx: fn.TaskContext, n: int) -> int:
    ctx.heartbeat()
    ctx.stream_data({"n": n})
    if ctx.is_cancelled:
        raise ctx.cancellation_error()
    return n * 2


@fn.workflow(name="mk-flow")
async def flow(ctx: fn.WorkflowContext, name: str) -> dict[str, object]:
    greeting = await ctx.schedule(GreetTask, GreetInput(name=name))
    doubled = ctx.schedule_async(sync_task, 21)
    started = ctx.current_time()
    await ctx.sleep(timedelta(hours=2))
    approved = await ctx.promise("approve")
    try:
        await ctx.promise("budget")
    except fn.PromiseRejected as exc:
        rejected = exc.rejection_reason
    signals = [await ctx.wait_for_signal("item"), *ctx.drain_signals("item")]
    await ctx.set("done", True)
    cached = await ctx.run("lookup", lambda: "live value")
    return {
        "greeting": greeting.greeting,
        "doubled": await doubled,
        "slept": (ctx.current_time() - started).total_seconds(),
        "approved": approved,
        "rejected": rejected,
        "signals": signals,
        "cached": cached,
        "keys": await ctx.state_keys(),
    }


def test_a_workflow_runs_on_a_mock_context_without_an_engine() -> None:
    ctx = MockWorkflowContext(time_controller=TimeController(datetime(2026, 1, 1, tzinfo=UTC)))
    ctx.mock_task_result(GreetTask, GreetOutput(greeting="Hi, Ada!"))
    ctx.mock_task_result("mk-sync", lambda n: n + 1)  # by name, computed from the input
    ctx.mock_promise_value("approve", True)
    ctx.mock_promise_rejection("budget", "over budget")
    for item in ("a", "b", "c"):
        ctx.mock_signal_value("item", item)
    ctx.mock_run_result("lookup", "recorded value")
    result = asyncio.run(flow.fn(ctx, "Ada"))
    assert result == {
        "greeting": "Hi, Ada!",
        "doubled": 22,
        "slept": 7200.0,
        "approved": True,
        "rejected": "over budget",
        "signals": ["a", "b", "c"],
        "cached": "recorded value",
        "keys": ["done"],
    }
    assert ctx.executed_tasks == [("mk-greet", GreetInput(name="Ada")), ("mk-sync", 21)]
    assert ctx.state == {"done": True}
    assert ctx.current_time() == datetime(2026, 1, 1, 2, tzinfo=UTC)


def test_unscripted_steps_fail_as_in_flovyn() -> None:
    ctx = MockWorkflowContext()
    with pytest.raises(fn.TaskFailed, match="No mock result configured for task mk-greet"):
        asyncio.run(flow.fn(ctx, "x"))
    ctx.mock_task_failure(GreetTask, fn.TaskFailed("card declined"))
    with pytest.raises(fn.TaskFailed, match="card declined"):
        asyncio.run(flow.fn(ctx, "x"))
    ctx.request_cancellation()
    with pytest.raises(fn.WorkflowCancelled):
        ctx.check_cancellation()


def test_tasks_run_on_a_mock_task_context() -> None:
    ctx = MockTaskContext(attempt=2)
    out = asyncio.run(GreetTask().run(ctx, GreetInput(name="Bo")))  # type: ignore[arg-type]
    assert out == GreetOutput(greeting="Hello, Bo!")
    assert [(r.progress, r.message) for r in ctx.progress_reports] == [(0.5, "greeting")]
    assert ctx.streamed_tokens == ["Hello", ", ", "Bo"]
    sync_ctx = MockTaskContext()
    assert sync_task.fn(sync_ctx, 4) == 8  # a def task calls the same methods plainly
    assert sync_ctx.heartbeat_count == 1
    assert [(e.event_type, e.payload) for e in sync_ctx.stream_events] == [
        ("data", {"data": {"n": 4}})
    ]
    sync_ctx.set_cancelled()
    with pytest.raises(fn.TaskCancelled):
        sync_task.fn(sync_ctx, 4)


def test_the_time_controller_fires_timers_in_order() -> None:
    clock = TimeController(datetime(2026, 1, 1, tzinfo=UTC))
    fired: list[str] = []
    clock.schedule_timer(timedelta(minutes=5), lambda: fired.append("5m"))
    clock.schedule_timer(timedelta(minutes=1), lambda: fired.append("1m"))
    asyncio.run(clock.advance(timedelta(minutes=2)))
    assert fired == ["1m"]
    asyncio.run(clock.advance(timedelta(minutes=3)))
    assert fired == ["1m", "5m"]
    assert clock.current_time_millis() == int(
        datetime(2026, 1, 1, 0, 5, tzinfo=UTC).timestamp() * 1000
    )
