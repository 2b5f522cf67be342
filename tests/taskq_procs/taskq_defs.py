"""Tasks and workflows of tests/test_task_queue.py. The worker process serving "gpu"
imports this file; so does the test process (the notebook), which serves only "default".
Every task appends its process id to a file under ``$FLOVYN_TEST_EFFECTS``, so a test
counts how often each step really ran, and where."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import flovyn_nb as fn
from flovyn_nb.errors import InvalidInput, TaskFailed


class Total(BaseModel):
    value: int


def effect(name: str) -> None:
    with (Path(os.environ["FLOVYN_TEST_EFFECTS"]) / name).open("a") as f:
        f.write(f"{os.getpid()}\n")


def gate(name: str) -> None:
    """Wait until the test creates ``<name>.gate`` (the test's switch, not a timing guess)."""
    path = Path(os.environ["FLOVYN_TEST_EFFECTS"]) / f"{name}.gate"
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} was never opened")
        time.sleep(0.01)


@fn.task(name="tq-add")
def add(args: dict[str, Any]) -> Total:
    effect(f"add-{args['tag']}")
    return Total(value=args["n"] + 1)


@fn.task(name="tq-fail", retry_policy=fn.RetryPolicy(max_attempts=2, initial_interval=0.05))
def fail(tag: str) -> int:
    effect(f"fail-{tag}")
    raise ValueError(f"no gpu for {tag}")


@fn.task(name="tq-gated")
def gated(tag: str) -> str:
    effect(f"gated-{tag}-started")
    gate(tag)
    effect(f"gated-{tag}-done")
    return f"opened {tag}"


@fn.workflow(name="tq-flow")
async def flow(ctx: fn.WorkflowContext, tag: str) -> str:
    total = await ctx.schedule(add, {"n": 41, "tag": tag}, queue="gpu")
    return f"{type(total).__name__}:{total.value}"


@fn.workflow(name="tq-fails")
async def fails(ctx: fn.WorkflowContext, tag: str) -> str:
    try:
        await ctx.schedule(fail, tag, queue="gpu")
    except TaskFailed as exc:
        return f"{type(exc).__name__} {exc.error_type} {exc.attempts}: {exc.error_message}"
    return "no failure"


@fn.workflow(name="tq-gated-flow")
async def gated_flow(ctx: fn.WorkflowContext, tag: str) -> str:
    opened = await ctx.schedule(gated, tag, queue="gpu")
    total = await ctx.schedule(add, {"n": 1, "tag": tag}, queue="gpu")
    await ctx.promise("go")
    return f"{opened} {total.value}"


@fn.workflow(name="tq-bad-queue")
async def bad_queue(ctx: fn.WorkflowContext, queue: object) -> str:
    try:
        await ctx.schedule(add, {"n": 1, "tag": "bad"}, queue=queue)  # type: ignore[arg-type]
    except InvalidInput as exc:
        return str(exc)
    return "accepted"


@fn.workflow(name="tq-child")
async def child(ctx: fn.WorkflowContext, n: int) -> int:
    effect("child")
    return n + 1


@fn.workflow(name="tq-parent")
async def parent(ctx: fn.WorkflowContext, n: int) -> str:
    got = await ctx.schedule_workflow(child, n, workflow_id=f"{ctx.workflow_id}-child", queue="gpu")
    return f"child gave {got}"


@fn.workflow(name="tq-by-name")
async def by_name(ctx: fn.WorkflowContext, n: int) -> dict[str, int]:
    """Schedules a task this process does not define: only the gpu worker does."""
    return dict(await ctx.schedule("tq-gpu-only", n, queue="gpu"))


@fn.workflow(name="tq-child-waits")
async def child_waits(ctx: fn.WorkflowContext) -> str:
    return str(await ctx.promise("never"))


@fn.workflow(name="tq-parent-waits")
async def parent_waits(ctx: fn.WorkflowContext) -> str:
    return str(await ctx.schedule_workflow(child_waits, workflow_id="tq-cw", queue="gpu"))
