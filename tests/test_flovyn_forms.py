"""Flovyn's class form of workflows and tasks, and Flovyn's keyword spellings on the
client, beside flovyn_nb's own."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.definitions import registry
from flovyn_nb.testing import wait_until

instances: list[object] = []


class Order(pydantic.BaseModel):
    order_id: str
    amount: float


class Receipt(pydantic.BaseModel):
    order_id: str
    charged: float
    note: str


@fn.task(name="cf-charge", description="Charge a card", version="1.2.0")
class ChargeTask:
    """Charges the order."""

    def __init__(self) -> None:
        instances.append(self)

    async def run(self, ctx: fn.TaskContext, input: Order) -> float:
        await ctx.report_progress(0.5, "charging")  # Flovyn's positional message
        return input.amount * 2


@fn.task(name="cf-note")
class NoteTask:
    def run(self, ctx: fn.TaskContext, input: str) -> str:  # a def variant
        return f"note:{input}:{ctx.attempt}"


@fn.workflow(
    name="cf-order", description="Charge, then note", version="2", timeout=timedelta(hours=1)
)
class OrderWorkflow:
    async def run(self, ctx: fn.WorkflowContext, input: Order) -> Receipt:
        charged = await ctx.schedule(ChargeTask, input)
        note = await ctx.schedule(NoteTask, input.order_id)
        await ctx.set("charged", charged)
        return Receipt(order_id=input.order_id, charged=charged, note=note)


@fn.workflow(name="cf-sync")
class SyncWorkflow:
    def run(self, ctx: fn.SyncWorkflowContext, input: str) -> str:
        result: str = ctx.schedule(NoteTask, input)
        return result


def test_the_class_form_runs_and_stays_a_class(engine: Runtime) -> None:
    instances.clear()
    assert isinstance(OrderWorkflow, type) and isinstance(ChargeTask, type)
    h = fn.start_workflow(OrderWorkflow, Order(order_id="o-1", amount=2.5), workflow_id="cf-1")
    assert h.result(timeout=30) == Receipt(order_id="o-1", charged=5.0, note="note:o-1:1")
    assert len(instances) == 1  # one instance per attempt
    assert fn.start_workflow(SyncWorkflow, "s", workflow_id="cf-2").result(timeout=30) == (
        "note:s:1"
    )
    # By name too, as with the function form.
    assert fn.start_workflow("cf-sync", "n", workflow_id="cf-3").result(timeout=30) == "note:n:1"


def test_the_class_form_records_flovyn_metadata_and_types() -> None:
    wf = registry.workflow("cf-order")
    assert (wf.description, wf.flovyn_version, wf.cls) == ("Charge, then note", "2", OrderWorkflow)
    assert wf.input_type is Order and wf.return_type is Receipt and wf.is_async
    task = registry.task("cf-charge")
    assert (task.description, task.flovyn_version, task.input_type) == (
        "Charge a card",
        "1.2.0",
        Order,
    )
    assert registry.task(ChargeTask) is task and registry.workflow(OrderWorkflow) is wf
    assert registry.task("cf-note").is_async is False


def test_the_run_methods_annotations_validate_the_input(engine: Runtime) -> None:
    with pytest.raises(fn.InvalidInput, match="amount"):
        fn.start_workflow(OrderWorkflow, {"order_id": "o-2", "amount": "lots"}, workflow_id="cf-4")


def test_a_class_without_run_or_undecorated_is_refused_clearly(engine: Runtime) -> None:
    with pytest.raises(fn.InvalidInput, match="has no run method"):

        @fn.workflow(name="cf-bad")
        class NoRun:
            async def go(self, ctx: fn.WorkflowContext) -> None: ...

    with pytest.raises(fn.InvalidInput, match="has no run method"):

        @fn.task(name="cf-bad-task")
        class NoRunTask:
            pass

    class Plain:
        async def run(self, ctx: fn.WorkflowContext) -> None: ...

    with pytest.raises(fn.InvalidInput, match="is not a registered workflow"):
        fn.start_workflow(Plain)  # type: ignore[arg-type]


# -- Flovyn's keyword spellings on the client ---------------------------------------------


@fn.workflow(name="cf-inbox")
async def inbox(ctx: fn.WorkflowContext) -> list[str]:
    out = [str(await ctx.promise("approve"))]
    try:
        await ctx.promise("second")
    except fn.PromiseRejected as exc:
        out.append(f"rejected:{exc.rejection_reason}")
    out.append(str(await ctx.wait_for_signal("go")))
    return out


def test_flovyn_keyword_spellings_are_accepted(engine: Runtime) -> None:
    h = fn.start_workflow(inbox, workflow_id="cf-kw")
    fn.resolve_promise(workflow_id="cf-kw", promise_name="approve", value="yes")
    fn.reject_promise("cf-kw", promise_name="second", error="too late")
    fn.signal_workflow(workflow_execution_id=h.workflow_execution_id, signal_name="go", value=7)
    assert h.result(timeout=30) == ["yes", "rejected:too late", "7"]


def test_both_spellings_at_once_are_one_clear_error(engine: Runtime) -> None:
    fn.start_workflow(inbox, workflow_id="cf-kw2")
    cases = [
        (lambda: fn.resolve_promise("cf-kw2", "approve", 1, promise_name="approve"), "name="),
        (lambda: fn.reject_promise("cf-kw2", "approve", "no", error="no"), "reason="),
        (lambda: fn.signal_workflow("cf-kw2", "go", signal_name="go"), "name="),
        (
            lambda: fn.signal_workflow("cf-kw2", "go", workflow_execution_id="x"),
            "workflow_id=",
        ),
        (lambda: fn.resolve_promise("cf-kw2", value=1), "needs name="),
    ]
    for call, what in cases:
        with pytest.raises(fn.InvalidInput, match=what) as caught:
            call()
        assert "\n" not in str(caught.value)
    # Nothing was changed by the refused calls.
    assert [p.name for p in wait_until(lambda: fn.pending_promises("cf-kw2"))] == ["approve"]


@fn.workflow(name="cf-sws")
async def sws(ctx: fn.WorkflowContext, start: int) -> int:
    value: int = await ctx.wait_for_signal("add")
    return start + value


def test_signal_with_start_takes_flovyns_signal_value(engine: Runtime) -> None:
    h = fn.signal_with_start_workflow(sws, 1, "add", signal_value=41, workflow_id="cf-sws")
    assert h.result(timeout=30) == 42
