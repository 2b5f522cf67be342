"""Flovyn's context API: per-call task overrides, retried ``ctx.run``, the task context."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.context import TaskContext
from flovyn_nb.model import EventType
from flovyn_nb.testing import FakeClock, wait_until

calls: dict[str, int] = {}


@fn.task(name="ctx-sleepy")  # no timeout of its own: only the call's override can stop it
async def sleepy() -> str:
    await anyio.sleep(30)
    return "finished"


@fn.task(name="ctx-fails-twice")  # one attempt by default: only the call's policy retries it
def fails_twice(key: str) -> str:
    calls[key] = calls.get(key, 0) + 1
    if calls[key] < 3:
        raise ConnectionError(f"attempt {calls[key]} failed")
    return f"ok after {calls[key]}"


_THREE = fn.RetryPolicy(max_attempts=3, initial_interval=timedelta(0), jitter=0)


@fn.workflow(name="ctx-overrides")
async def overrides(ctx: fn.WorkflowContext) -> list[str]:
    out = []
    for timeout in (0.2, timedelta(milliseconds=200)):
        try:
            await ctx.schedule_async(sleepy, timeout=timeout)
        except fn.TaskTimeout as exc:
            out.append(f"timeout:{exc.attempts}")
    out.append(await ctx.schedule(fails_twice, "wf", retry_policy=_THREE))
    try:
        await ctx.schedule(sleepy, timeout=-1)
    except fn.InvalidInput as exc:
        out.append(str(exc))
    return out


def test_schedule_overrides_timeout_and_retry_policy_per_call(engine: Runtime) -> None:
    calls.clear()
    # sleepy would take 30 s: a result within 25 s means the overrides timed it out.
    result = fn.start_workflow(overrides, workflow_id="overrides").result(timeout=30)
    assert result[:3] == ["timeout:1", "timeout:1", "ok after 3"]
    assert "timeout of ctx.schedule(ctx-sleepy) must be positive" in result[3]
    events = fn.get_run("overrides").events
    scheduled = [e.payload for e in events if e.type is EventType.TASK_SCHEDULED]
    # The override is recorded; the refused call recorded nothing.
    assert [p.get("timeoutSeconds") for p in scheduled] == [0.2, 0.2, None]
    assert scheduled[2]["maxAttempts"] == 3


@fn.workflow(name="ctx-overrides-sync")
def overrides_sync(ctx: fn.SyncWorkflowContext) -> str:
    result: str = ctx.schedule(fails_twice, "sync", retry_policy=_THREE)
    return result


def test_sync_workflows_take_the_same_overrides(engine: Runtime) -> None:
    calls.clear()
    assert fn.start_workflow(overrides_sync, workflow_id="sync-ov").result(timeout=30) == (
        "ok after 3"
    )


def _flaky_op(key: str, failures: int) -> str:
    calls[key] = calls.get(key, 0) + 1
    if calls[key] <= failures:
        raise ConnectionError(f"call {calls[key]} failed")
    return f"done after {calls[key]}"


@fn.workflow(name="ctx-run-retries")
async def run_retries(ctx: fn.WorkflowContext) -> list[str]:
    before = ctx.current_time()
    ok = await ctx.run(
        "op", lambda: _flaky_op("op", 2), max_attempts=3, retry_interval=timedelta(seconds=5)
    )
    waited = (ctx.current_time() - before).total_seconds()
    try:
        await ctx.run("gives-up", lambda: _flaky_op("gives-up", 5), max_attempts=2)
        gave_up = "no"
    except ConnectionError as exc:
        gave_up = str(exc)
    return [ok, f"{waited >= 10}", gave_up]


def test_run_retries_up_to_max_attempts_with_the_interval_between(
    fake_engine: Runtime, clock: FakeClock
) -> None:
    calls.clear()
    result = fn.start_workflow(run_retries, workflow_id="run-retries").result(timeout=30)
    assert result == ["done after 3", "True", "call 2 failed"]
    assert calls == {"op": 3, "gives-up": 2}
    done = [e for e in fn.get_run("run-retries").events if e.type is EventType.OPERATION_COMPLETED]
    assert [e.payload["operationName"] for e in done] == ["current_time", "op", "current_time"]


def test_run_refuses_nonsense_attempts(fake_engine: Runtime) -> None:
    @fn.workflow(name="ctx-run-bad")
    async def bad(ctx: fn.WorkflowContext) -> str:
        try:
            await ctx.run("x", lambda: 1, max_attempts=0)
        except fn.InvalidInput as exc:
            return str(exc)
        return "accepted"

    message = fn.start_workflow(bad, workflow_id="run-bad").result(timeout=30)
    assert "max_attempts of ctx.run('x') must be an int >= 1" in message


def test_a_replay_does_not_rerun_a_retried_operation(store_path: Path) -> None:
    calls.clear()

    @fn.workflow(name="ctx-run-replay")
    async def replayed(ctx: fn.WorkflowContext) -> str:
        value: str = await ctx.run("op2", lambda: _flaky_op("op2", 1), max_attempts=2)
        return value + await ctx.promise("go", type_hint=str)

    fn.start(store_path)
    fn.start_workflow(replayed, workflow_id="run-replay")
    wait_until(lambda: fn.pending_promises("run-replay"))
    fn.stop()
    assert calls == {"op2": 2}

    fn.start(store_path)  # replays the run: the recorded outcome, not a third call
    wait_until(lambda: fn.get_run("run-replay", events=False).owner is not None)
    fn.resolve_promise("run-replay", "go", "!")
    assert fn.get_handle("run-replay").result(timeout=30) == "done after 2!"
    assert calls == {"op2": 2}


@fn.task(name="ctx-async-progress")
async def async_progress(ctx: fn.TaskContext) -> bool:
    await ctx.heartbeat()
    await ctx.report_progress(0.5, details="half way")
    return ctx.last_heartbeat is not None and not ctx.is_cancelled


@fn.task(name="ctx-sync-progress")
def sync_progress(ctx: fn.TaskContext) -> bool:
    ctx.heartbeat()
    ctx.report_progress(0.25)
    return ctx.last_heartbeat is not None


@fn.workflow(name="ctx-progress")
async def progress(ctx: fn.WorkflowContext) -> list[bool]:
    return [await ctx.schedule(async_progress), await ctx.schedule(sync_progress)]


def test_heartbeat_and_progress_are_awaited_in_async_tasks_and_called_in_sync_ones(
    engine: Runtime,
) -> None:
    assert fn.start_workflow(progress, workflow_id="progress").result(timeout=30) == [True, True]
    logs = [(e.stream, e.message) for e in fn.run_logs("progress")]
    assert ("progress", "50% half way") in logs
    assert ("progress", "25%") in logs


def test_cancellation_error_is_the_error_a_cancelled_task_raises() -> None:
    ctx = TaskContext(
        task_execution_id="t-1",
        task_kind="ctx-kind",
        attempt=1,
        workflow_id="wf-1",
        logger=lambda: logging.getLogger("test"),
        progress=lambda fraction, message: None,
    )
    assert ctx.is_cancelled is False
    ctx.cancel()
    assert ctx.is_cancelled is True
    error = ctx.cancellation_error()
    assert isinstance(error, fn.FlovynError)
    assert str(error) == "task 'ctx-kind' was cancelled"
    with pytest.raises(fn.FlovynError, match="was cancelled"):
        raise error
