"""The Flovyn Python SDK's README and examples/ run unchanged on flovyn_nb (apart from
the import line; see tests/flovyn_examples/), on a real engine and store."""

from __future__ import annotations

import pytest
from flovyn_examples import hello_world, order_processing, readme

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.testing import MockWorkflowContext

# The README's own unit test uses pytest-asyncio's marker; anyio's plugin runs it here.
pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_hello_world_example(engine: Runtime) -> None:
    handle = fn.start_workflow(
        hello_world.HelloWorldWorkflow, hello_world.HelloInput(name="World"), workflow_id="ex-hw"
    )
    result = handle.result(timeout=30)
    # (readme.py registers "hello-world" too, later: the result is typed by the newest.)
    assert result.message.startswith("Hello, World! (processed at ")
    progress = [e.message for e in fn.run_logs("ex-hw") if e.stream == "progress"]
    assert progress == ["50% Generating greeting", "100% Done"]


ITEMS = [
    order_processing.OrderItem(product_id="PROD-A", quantity=2, price=29.99),
    order_processing.OrderItem(product_id="PROD-B", quantity=1, price=49.99),
]


def test_order_processing_example(engine: Runtime) -> None:
    order = order_processing.OrderInput(order_id="ORD-12345", customer_id="CUST-001", items=ITEMS)
    handle = fn.start_workflow(order_processing.OrderProcessingWorkflow, order, workflow_id="ex-op")
    result = handle.result(timeout=60)
    assert result == order_processing.OrderResult(
        order_id="ORD-12345",
        status=order_processing.OrderStatus.FULFILLED,
        confirmation_id="txn-ORD-12345-1",
    )
    states = [e.payload for e in fn.get_run("ex-op").events if e.type.value == "STATE_SET"]
    assert [s["key"] for s in states][-2:] == ["status", "tracking_number"]


def test_order_processing_example_rejects_an_invalid_order(engine: Runtime) -> None:
    bad = [order_processing.OrderItem(product_id="PROD-X", quantity=0, price=1.0)]
    order = order_processing.OrderInput(order_id="ORD-0", customer_id="C", items=bad)
    handle = fn.start_workflow(
        order_processing.OrderProcessingWorkflow, order, workflow_id="ex-bad"
    )
    result = handle.result(timeout=60)
    assert result.status is order_processing.OrderStatus.FAILED
    assert result.error == "Validation failed: Invalid quantity for product PROD-X"


def test_readme_quick_start(engine: Runtime) -> None:
    handle = fn.start_workflow(
        readme.HelloWorldWorkflow, readme.HelloInput(name="World"), workflow_id="ex-readme"
    )
    assert handle.result(timeout=30).message.startswith("Hello, World! (")


GreetTask, GreetOutput = readme.GreetTask, readme.GreetOutput
HelloWorldWorkflow, HelloInput = readme.HelloWorldWorkflow, readme.HelloInput


@pytest.mark.anyio
async def test_hello_workflow():  # type: ignore[no-untyped-def]  # the README's, unchanged
    ctx = MockWorkflowContext()
    ctx.mock_task_result(GreetTask, GreetOutput(greeting="Hello, Test!"))

    workflow = HelloWorldWorkflow()
    result = await workflow.run(ctx, HelloInput(name="Test"))

    assert "Hello, Test!" in result.message
    assert len(ctx.executed_tasks) == 1
