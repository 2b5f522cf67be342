"""Cancellation end to end: waits raise WorkflowCancelled, tasks stop, runs end CANCELLED."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.testing import wait_until


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every engine test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


cleaned: list[str] = []
task_started = threading.Event()
sync_task_saw_cancel = threading.Event()


@fn.task(name="c-cleanup")
def cleanup(what: str) -> None:
    cleaned.append(what)


@fn.workflow(name="c-promise")
async def waits_on_promise(ctx: fn.WorkflowContext) -> str:
    try:
        await ctx.promise("never")
    except fn.WorkflowCancelled:
        await ctx.schedule(cleanup, "promise")  # cleanup steps still run after a cancel
        raise
    return "resolved"


@fn.workflow(name="c-timer")
async def waits_on_timer(ctx: fn.WorkflowContext) -> None:
    await ctx.sleep(3600)


@fn.task(name="c-long-async")
async def long_async() -> None:
    task_started.set()
    await anyio.sleep(3600)


@fn.task(name="c-long-sync")
def long_sync(ctx: fn.TaskContext) -> None:
    task_started.set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ctx.is_cancelled:
            sync_task_saw_cancel.set()
            return
        time.sleep(0.005)


@fn.workflow(name="c-task")
async def waits_on_task(ctx: fn.WorkflowContext, kind: str) -> None:
    await ctx.schedule(kind)


def _assert_cancelled(h: fn.WorkflowHandle) -> list[EventType]:
    with pytest.raises(fn.WorkflowCancelled):
        h.result(timeout=30)
    run = fn.get_run(h.workflow_id)
    assert run.status is RunStatus.CANCELLED
    types = [e.type for e in run.events]
    assert EventType.CANCELLATION_REQUESTED in types
    assert types[-1] is EventType.WORKFLOW_CANCELLED
    return types


def test_cancel_a_run_waiting_on_a_promise_runs_its_cleanup(engine: Runtime) -> None:
    cleaned.clear()
    h = fn.start_workflow(waits_on_promise, workflow_id="c-1")
    wait_until(lambda: fn.pending_promises("c-1"))
    h.cancel()
    _assert_cancelled(h)
    assert cleaned == ["promise"]
    assert fn.pending_promises() == []


def test_cancel_a_run_waiting_on_a_timer(engine: Runtime) -> None:
    h = fn.start_workflow(waits_on_timer, workflow_id="c-2")
    wait_until(lambda: fn.get_run("c-2").status is RunStatus.WAITING)
    h.cancel()
    types = _assert_cancelled(h)  # within 30 s, so not by waiting out the hour's timer
    assert EventType.TIMER_CANCELLED in types


@pytest.mark.parametrize("kind", ["c-long-async", "c-long-sync"])
def test_cancel_a_running_task(engine: Runtime, kind: str) -> None:
    task_started.clear()
    sync_task_saw_cancel.clear()
    h = fn.start_workflow(waits_on_task, kind, workflow_id=f"c-{kind}")
    assert task_started.wait(30)
    h.cancel()
    types = _assert_cancelled(h)
    assert EventType.TASK_CANCELLED in types
    if kind == "c-long-sync":
        assert sync_task_saw_cancel.wait(30), "the sync task never saw ctx.is_cancelled"


def test_cancel_from_the_store_side_reaches_the_owner(engine: Runtime, store_path) -> None:
    """A cancel written into the store (as another process does) is picked up by the owner."""
    from flovyn_nb.store import open_store

    h = fn.start_workflow(waits_on_timer, workflow_id="c-remote")
    wait_until(lambda: fn.get_run("c-remote").status is RunStatus.WAITING)
    other = open_store(store_path)  # a second handle, like a CLI in another process would open
    try:
        other.request_cancel("c-remote")
    finally:
        other.close()
    _assert_cancelled(h)


def test_cancelling_an_ended_run_is_a_clear_error(engine: Runtime) -> None:
    h = fn.start_workflow(waits_on_promise, workflow_id="c-ended")
    wait_until(lambda: fn.pending_promises("c-ended"))
    fn.resolve_promise("c-ended", "never")
    assert h.result(timeout=30) == "resolved"
    with pytest.raises(fn.InvalidInput, match="already ended"):
        h.cancel()
