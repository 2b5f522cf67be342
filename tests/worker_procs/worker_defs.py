"""Workflows served by ``flovyn-nb worker`` in tests/test_worker.py. Every task appends
its process id to a side-effect file under ``$FLOVYN_TEST_EFFECTS``, so the test counts
how often each step really ran, and where."""

from __future__ import annotations

import os
import time
from pathlib import Path

import flovyn_nb as fn


def effect(name: str) -> None:
    with (Path(os.environ["FLOVYN_TEST_EFFECTS"]) / name).open("a") as f:
        f.write(f"{os.getpid()}\n")


@fn.task(name="wk-step")
def step(args: dict[str, object]) -> str:
    effect(f"{args['run']}-{args['n']}")
    return f"{args['run']}:{args['n']}"


@fn.workflow(name="wk-job")
async def job(ctx: fn.WorkflowContext, run: str) -> list[str]:
    return [await ctx.schedule(step, {"run": run, "n": n}) for n in range(3)]


@fn.task(name="wk-gated")
def gated(run: str) -> str:
    """Waits until the test opens ``<run>.gate`` (the test's switch, not a timing guess)."""
    effect(f"{run}-gated-started")
    gate = Path(os.environ["FLOVYN_TEST_EFFECTS"]) / f"{run}.gate"
    deadline = time.monotonic() + 120
    while not gate.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{gate} was never opened")
        time.sleep(0.01)
    effect(f"{run}-gated-done")
    return "opened"


@fn.workflow(name="wk-gate")
async def gate_flow(ctx: fn.WorkflowContext, run: str) -> str:
    await ctx.schedule(step, {"run": run, "n": 0})
    opened = await ctx.schedule(gated, run)
    await ctx.schedule(step, {"run": run, "n": 2})
    return str(opened)


@fn.workflow(name="wk-await")
async def await_flow(ctx: fn.WorkflowContext, run: str) -> str:
    """Waits on promise ``go`` (resolved from the CLI in another process), then steps."""
    value = await ctx.promise("go")
    await ctx.schedule(step, {"run": run, "n": 1})
    return f"{value}"
