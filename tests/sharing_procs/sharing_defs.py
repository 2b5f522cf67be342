"""Workflows and tasks every helper process of tests/test_sharing.py registers.

Same names and same source in every process, so one process can take over another's runs.
Tasks append one line per execution to the file named by ``EFFECTS_ENV`` with a single
``O_APPEND`` write (atomic between processes), so counting lines counts executions.
"""

from __future__ import annotations

import os
import time
from typing import Any

import flovyn_nb as fn
from flovyn_nb import WorkflowContext

EFFECTS_ENV = "FLOVYN_SHARING_EFFECTS"


def append_line(text: str) -> None:
    fd = os.open(os.environ[EFFECTS_ENV], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


@fn.task(name="sharing-effect")
def effect(key: str) -> int:
    """A side effect: one line ``KEY PID`` per execution."""
    append_line(f"{key} {os.getpid()}")
    return os.getpid()


@fn.task(name="sharing-stamp")
def stamp(key: str) -> float:
    """Records when it started: one line ``KEY EPOCH PID``."""
    started = time.time()
    append_line(f"{key} {started:.6f} {os.getpid()}")
    return started


@fn.workflow(name="sharing-race")
async def race(ctx: WorkflowContext, key: str) -> dict[str, int]:
    # Due almost at once; the seeding process's clock never fires it (see proc.py), so
    # whoever takes the run over finds it overdue and runs both steps.
    await ctx.sleep(0.05)
    first = await ctx.schedule(effect, f"{key}:a")
    second = await ctx.schedule(effect, f"{key}:b")
    return {"a": first, "b": second}


@fn.workflow(name="sharing-many-promises")
async def many_promises(ctx: WorkflowContext, count: int) -> list[Any]:
    return [await ctx.promise(f"p{index}") for index in range(count)]


@fn.workflow(name="sharing-wake")
async def wake(ctx: WorkflowContext, key: str) -> int:
    value: int = await ctx.promise("go", type_hint=int)
    await ctx.schedule(stamp, key)
    return value
