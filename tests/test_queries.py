"""Queries over the store: runs, events, promises, logs, SQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.model import PAYLOADS, EventType, RunStatus
from flovyn_nb.testing import wait_until


@fn.task(name="q-step")
def step(n: int) -> int:
    print("step", n)
    return n


@fn.workflow(name="q-flow")
async def flow(ctx: fn.WorkflowContext, n: int) -> int:
    await ctx.schedule(step, n)
    await ctx.promise("ok", timeout=timedelta(hours=1))
    return n


@fn.workflow(name="q-other")
async def other(ctx: fn.WorkflowContext) -> str:
    return "done"


def test_get_list_promises_logs_and_sql(engine: Runtime) -> None:
    fn.start_workflow(flow, 1, workflow_id="q-1")
    fn.start_workflow(other, workflow_id="q-2").result(timeout=30)
    [promise] = wait_until(lambda: fn.pending_promises())
    assert (promise.workflow_id, promise.name) == ("q-1", "ok")
    assert promise.timeout_at is not None
    assert promise.timeout_at - promise.created_at == pytest.approx(
        timedelta(hours=1), abs=timedelta(seconds=1)
    )

    assert [r.workflow_id for r in fn.list_runs(status="WAITING")] == ["q-1"]
    assert [r.workflow_id for r in fn.list_runs(status=[RunStatus.COMPLETED])] == ["q-2"]
    assert [r.workflow_id for r in fn.list_runs(kind="q-flow")] == ["q-1"]
    assert len(fn.list_runs()) == 2
    with pytest.raises(fn.InvalidInput, match="unknown status 'done'; use one of PENDING"):
        fn.list_runs(status="done")

    run = fn.get_run("q-1")
    assert run.kind == "q-flow" and run.input == 1 and run.status is RunStatus.WAITING
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
    assert all(e.ts.tzinfo is not None for e in run.events)
    # every payload is described by its pydantic model
    for event in run.events:
        PAYLOADS[event.type].model_validate(event.payload)

    assert [(log.stream, log.message) for log in fn.run_logs("q-1")] == [("stdout", "step 1")]

    frame = fn.sql(
        "select kind, count(*) as n from workflow_executions group by kind order by kind"
    )
    assert frame.to_dict("records") == [{"kind": "q-flow", "n": 1}, {"kind": "q-other", "n": 1}]
    tasks = fn.sql("select kind, status, attempts from tasks")
    assert tasks.to_dict("records") == [{"kind": "q-step", "status": "COMPLETED", "attempts": 1}]
    with pytest.raises(fn.InvalidInput, match="bad SQL"):
        fn.sql("select * from no_such_table")

    fn.resolve_promise("q-1", "ok")
    assert fn.get_handle("q-1").result(timeout=30) == 1
    assert fn.get_run("q-1").events[-1].type is EventType.WORKFLOW_COMPLETED


def test_queries_without_an_engine_read_the_store(engine: Runtime, store_path) -> None:
    fn.start_workflow(other, workflow_id="q-3").result(timeout=30)
    fn.stop()
    assert fn.get_run("q-3", store=store_path).status is RunStatus.COMPLETED
    assert [r.workflow_id for r in fn.list_runs(store=store_path)] == ["q-3"]
    with pytest.raises(fn.StoreError, match="no flovyn store"):
        fn.list_runs(store=store_path.with_name("missing.duckdb"))
