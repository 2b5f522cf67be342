"""Starting runs, results, typed values, idempotency, fan-out, children, state."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import anyio
import pydantic
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.testing import wait_until


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every engine test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


class Order(pydantic.BaseModel):
    id: int
    amount: float


class Receipt(pydantic.BaseModel):
    order_id: int
    total: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


@fn.task(name="wf-price")
def price(order: Order) -> Receipt:
    return Receipt(order_id=order.id, total=order.amount * 1.2)


@fn.task(name="wf-shift")
async def shift(p: Point) -> Point:
    return Point(p.x + 1, p.y + 1)


@fn.workflow(name="wf-typed")
async def typed_workflow(ctx: fn.WorkflowContext, order: Order) -> Receipt:
    receipt = await ctx.schedule(price, order)
    assert isinstance(receipt, Receipt)  # typed by the task's return annotation
    point = await ctx.schedule(shift, Point(1, 2))
    assert point == Point(2, 3)
    return receipt


@pytest.mark.duckdb_only
def test_typed_values_round_trip(engine: Runtime) -> None:
    h = fn.start_workflow(typed_workflow, Order(id=7, amount=10.0), workflow_id="typed-1")
    result = h.result(timeout=30)
    assert isinstance(result, Receipt)
    assert result == Receipt(order_id=7, total=12.0)
    run = fn.get_run("typed-1")
    assert run.status is RunStatus.COMPLETED
    assert run.input == {"id": 7, "amount": 10.0}  # stored as JSON, not pickle
    assert run.output == {"order_id": 7, "total": 12.0}
    stored = fn.sql("select typeof(input) as t from workflow_executions")
    assert stored["t"][0] == "JSON"


def test_bad_input_is_refused_and_nothing_is_stored(engine: Runtime) -> None:
    with pytest.raises(fn.InvalidInput, match="amount"):
        fn.start_workflow(typed_workflow, {"id": 1, "amount": "lots"}, workflow_id="typed-bad")
    with pytest.raises(fn.InvalidInput, match="cannot be stored as JSON"):
        fn.start_workflow(typed_workflow, object(), workflow_id="typed-bad")
    assert fn.list_runs() == []


@fn.workflow(name="wf-sync")
def sync_workflow(ctx: fn.SyncWorkflowContext, n: int) -> int:
    total = ctx.schedule(price, Order(id=n, amount=1.0)).total
    handles = [ctx.schedule_async("wf-shift", Point(i, i)) for i in range(3)]
    ctx.sleep(0.01)
    return int(total * 10) + sum(h.result().x for h in handles)


def test_sync_workflow_uses_the_same_commands(engine: Runtime) -> None:
    assert fn.start_workflow(sync_workflow, 3, workflow_id="sync-1").result(timeout=30) == 12 + 6


@fn.workflow(name="wf-echo")
async def echo(ctx: fn.WorkflowContext, value: dict) -> dict:
    return value


def test_same_workflow_id_returns_the_existing_run(engine: Runtime) -> None:
    first = fn.start_workflow(echo, {"n": 1}, workflow_id="echo-1")
    second = fn.start_workflow(echo, {"n": 2}, workflow_id="echo-1")
    assert second.execution_id == first.execution_id
    assert second.result(timeout=30) == {"n": 1}
    assert len(fn.list_runs()) == 1


async def test_await_handle_from_async_code(engine: Runtime) -> None:
    h = fn.start_workflow(echo, {"a": [1, 2]}, workflow_id="echo-await")
    with anyio.fail_after(10):
        assert await h == {"a": [1, 2]}


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


calls: list[int] = []
lock = threading.Lock()


@fn.task(name="wf-square")
def square(n: int) -> int:
    with lock:
        calls.append(n)
    return n * n


@fn.workflow(name="wf-fanout")
async def fan_out(ctx: fn.WorkflowContext, n: int) -> int:
    handles = [ctx.schedule_async(square, i) for i in range(n)]
    results = [await h for h in handles]
    return sum(results)


def test_fan_out_fan_in_of_100_tasks(engine: Runtime) -> None:
    calls.clear()
    h = fn.start_workflow(fan_out, 100, workflow_id="fan-100")
    assert h.result(timeout=30) == sum(i * i for i in range(100))
    assert sorted(calls) == list(range(100))
    tasks = fn.sql("select status, count(*) as n from tasks group by status")
    assert tasks.to_dict("records") == [{"status": "COMPLETED", "n": 100}]


@fn.workflow(name="wf-child")
async def child(ctx: fn.WorkflowContext, n: int) -> int:
    if n < 0:
        raise ValueError("negative input")
    return n * 2


@fn.workflow(name="wf-parent")
async def parent(ctx: fn.WorkflowContext, n: int) -> dict:
    doubled = await ctx.schedule_workflow(child, n)
    try:
        await ctx.schedule_workflow(child, -1)
    except fn.ChildWorkflowFailed as exc:
        return {"doubled": doubled, "error": str(exc)}
    return {"doubled": doubled, "error": None}


def test_child_workflows_and_their_failure(engine: Runtime) -> None:
    result = fn.start_workflow(parent, 21, workflow_id="parent-1").result(timeout=30)
    assert result["doubled"] == 42
    assert "ValueError: negative input" in result["error"]
    children = fn.list_runs(kind="wf-child")
    assert {r.status for r in children} == {RunStatus.COMPLETED, RunStatus.FAILED}
    assert {r.parent_id for r in children} == {fn.get_run("parent-1").execution_id}
    types = [e.type for e in fn.get_run("parent-1").events]
    assert types.count(EventType.CHILD_WORKFLOW_INITIATED) == 2
    assert EventType.CHILD_WORKFLOW_COMPLETED in types
    assert EventType.CHILD_WORKFLOW_FAILED in types


@fn.workflow(name="wf-failing")
async def failing(ctx: fn.WorkflowContext) -> None:
    raise RuntimeError("boom")


def test_failed_run_raises_workflow_failed_with_cause(engine: Runtime) -> None:
    h = fn.start_workflow(failing, workflow_id="fail-1")
    with pytest.raises(fn.WorkflowFailed, match="RuntimeError: boom") as info:
        h.result(timeout=30)
    assert info.value.cause["type"] == "RuntimeError"
    assert "raise RuntimeError" in info.value.cause["traceback"]
    run = fn.get_run("fail-1")
    assert run.status is RunStatus.FAILED
    assert run.error is not None and run.error.message == "boom"
    assert run.events[-1].type is EventType.WORKFLOW_EXECUTION_FAILED


@fn.workflow(name="wf-blocks-its-loop")
async def blocks_its_loop(ctx: fn.WorkflowContext, how: str) -> None:
    # (A handle's result() no longer belongs here: in an async workflow it is a coroutine,
    # as in Flovyn; see tests/test_flovyn_parity.py.)
    fn.start_workflow(failing)  # a blocking call into the engine


@pytest.mark.parametrize("how", ["start"])
def test_a_blocking_call_from_the_engine_loop_fails_clearly(engine: Runtime, how: str) -> None:
    """Made on the engine's own loop, a blocking call would wait for itself for ever: it
    raises an EngineError that says what to do instead, and only the run fails."""
    h = fn.start_workflow(blocks_its_loop, how, workflow_id=f"blocks-{how}")
    with pytest.raises(fn.WorkflowFailed, match="cannot be made from workflow code") as info:
        h.result(timeout=30)
    assert info.value.cause["type"] == "EngineError"
    assert engine.running


side_effects: list[str] = []


@fn.workflow(name="wf-state")
async def stateful(ctx: fn.WorkflowContext) -> dict:
    await ctx.set("count", 1)
    await ctx.set("count", await ctx.get("count") + 1)
    await ctx.set("tmp", "x")
    await ctx.clear("tmp")
    token = await ctx.run("make-token", lambda: side_effects.append("token") or "tok-1")
    when = ctx.current_time()
    return {
        "count": await ctx.get("count"),
        "tmp": await ctx.get("tmp", "gone"),
        "token": token,
        "when": when.isoformat(),
        "random": ctx.random(),
        "uuid": str(ctx.random_uuid()),
        "id": ctx.workflow_execution_id,
    }


def test_state_operations_and_deterministic_helpers(engine: Runtime) -> None:
    side_effects.clear()
    out = fn.start_workflow(stateful, workflow_id="state-1").result(timeout=30)
    assert out["count"] == 2 and out["tmp"] == "gone" and out["token"] == "tok-1"
    assert side_effects == ["token"]
    events = fn.get_run("state-1").events
    types = [e.type for e in events]
    assert types.count(EventType.STATE_SET) == 3
    assert types.count(EventType.STATE_CLEARED) == 1
    operations = [e.payload for e in events if e.type is EventType.OPERATION_COMPLETED]
    assert operations[0] == {"operationName": "make-token", "result": "tok-1"}
    assert operations[1]["operationName"] == "current_time"
    assert operations[1]["result"] == out["when"]
    assert 0 <= out["random"] < 1
    assert out["id"] == fn.get_run("state-1").execution_id


@fn.task(name="wf-record")
def record(values: list) -> None:
    side_effects.append("recorded")


@fn.workflow(name="wf-deterministic")
async def deterministic(ctx: fn.WorkflowContext) -> list:
    values = [ctx.random(), ctx.current_time().isoformat(), str(ctx.random_uuid())]
    await ctx.set("seen", values)
    await ctx.schedule(record, values)
    await ctx.promise("go")
    return [*values, await ctx.get("seen")]


def test_time_and_randomness_are_the_same_after_replay(store_path) -> None:
    side_effects.clear()
    engine = fn.start(store_path)
    fn.start_workflow(deterministic, workflow_id="det-1")
    wait_until(lambda: fn.pending_promises("det-1"))
    first = [e.payload for e in fn.get_run("det-1").events if e.type is EventType.TASK_SCHEDULED]
    fn.stop()  # like a kernel restart: the run stays WAITING in the store
    assert engine.errors == []

    fn.start(store_path)  # the workflow is registered: the run is recovered by replay
    fn.resolve_promise("det-1", "go")
    out = fn.get_handle("det-1").result(timeout=30)
    recorded_values = first[0]["input"]
    assert out[:3] == recorded_values
    assert out[3] == recorded_values
    assert side_effects == ["recorded"]  # the completed task did not run again


def test_unknown_workflow_names_are_clear(engine: Runtime) -> None:
    with pytest.raises(fn.UnknownWorkflow, match="no workflow named 'nope'"):
        fn.start_workflow("nope")
    with pytest.raises(fn.UnknownWorkflow, match="no run with workflow id"):
        fn.get_run("does-not-exist")


def test_start_without_engine_says_what_to_do() -> None:
    with pytest.raises(fn.FlovynError, match=r"flovyn_nb\.start"):
        fn.start_workflow(echo, {})


def test_redefining_a_workflow_replaces_it(engine: Runtime) -> None:
    @fn.workflow(name="wf-redefined")
    async def v1(ctx: fn.WorkflowContext) -> str:
        return "v1"

    @fn.workflow(name="wf-redefined")
    async def v2(ctx: fn.WorkflowContext) -> str:
        return "v2"

    assert fn.start_workflow("wf-redefined", workflow_id="redef").result(timeout=30) == "v2"
    assert v2.version == v1.version + 1
