"""Retries with backoff, final failures, timeouts."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import anyio
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.testing import FakeClock

attempts: dict[str, int] = {}


@fn.task(
    name="flaky",
    retry_policy=fn.RetryPolicy(
        max_attempts=3, initial_interval=timedelta(seconds=10), backoff_coefficient=3, jitter=0
    ),
)
def flaky(key: str) -> str:
    attempts[key] = attempts.get(key, 0) + 1
    if attempts[key] < 3:
        raise ConnectionError(f"attempt {attempts[key]} failed")
    return f"ok after {attempts[key]}"


@fn.workflow(name="tasks-flaky")
async def run_flaky(ctx: fn.WorkflowContext, key: str) -> str:
    return await ctx.schedule(flaky, key)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_retry_until_success_with_policy_backoff(fake_engine: Runtime, clock: FakeClock) -> None:
    attempts.clear()
    h = fn.start_workflow(run_flaky, "a", workflow_id="flaky-1")
    assert h.result(timeout=30) == "ok after 3"
    events = fn.get_run("flaky-1").events
    retries = [e for e in events if e.type is EventType.TASK_RETRY_SCHEDULED]
    starts = [e for e in events if e.type is EventType.TASK_STARTED]
    assert [r.payload["attempt"] for r in retries] == [1, 2]
    assert [s.payload["attempt"] for s in starts] == [1, 2, 3]
    assert retries[0].payload["error"]["message"] == "attempt 1 failed"
    # Backoff as the policy says: 10 s, then 30 s (virtual time, so the test is instant).
    delays = [_ts(r.payload["nextAttemptAt"]) - r.ts.timestamp() for r in retries]
    assert delays == pytest.approx([10, 30], abs=0.01)
    for retry, start in zip(retries, starts[1:], strict=True):
        assert start.ts.timestamp() >= _ts(retry.payload["nextAttemptAt"]) - 0.001


@fn.task(
    name="always-fails", retry_policy=fn.RetryPolicy(max_attempts=2, initial_interval=timedelta(0))
)
def always_fails(n: int) -> None:
    raise KeyError(f"missing {n}")


@fn.workflow(name="tasks-fails")
async def run_fails(ctx: fn.WorkflowContext) -> str:
    try:
        await ctx.schedule(always_fails, 5)
    except fn.TaskFailed as exc:
        return f"{exc.attempts}|{exc.error_type}|{exc.error_message}|{'raise KeyError' in exc.traceback}"
    return "no error"


@fn.workflow(name="tasks-fails-uncaught")
async def run_fails_uncaught(ctx: fn.WorkflowContext) -> None:
    await ctx.schedule(always_fails, 6)


def test_exceeding_attempts_raises_task_failed_with_traceback(engine: Runtime) -> None:
    assert fn.start_workflow(run_fails).result(timeout=30) == "2|KeyError|'missing 5'|True"
    h = fn.start_workflow(run_fails_uncaught, workflow_id="fails-2")
    with pytest.raises(fn.WorkflowFailed, match="TaskFailed"):
        h.result(timeout=30)
    run = fn.get_run("fails-2")
    assert run.status is RunStatus.FAILED
    assert run.error is not None and "missing 6" in run.error.message
    assert [e.type for e in run.events].count(EventType.TASK_FAILED) == 1


@fn.task(
    name="picky",
    retry_policy=fn.RetryPolicy(
        max_attempts=5, initial_interval=timedelta(0), non_retryable_errors=(ValueError,)
    ),
)
def picky() -> None:
    attempts["picky"] = attempts.get("picky", 0) + 1
    raise ValueError("bad request")


@fn.workflow(name="tasks-picky")
async def run_picky(ctx: fn.WorkflowContext) -> None:
    await ctx.schedule(picky)


def test_non_retryable_errors_fail_at_once(engine: Runtime) -> None:
    attempts.pop("picky", None)
    with pytest.raises(fn.WorkflowFailed, match="bad request"):
        fn.start_workflow(run_picky).result(timeout=30)
    assert attempts["picky"] == 1


@fn.task(name="slow-async", timeout=0.2)
async def slow_async() -> str:
    await anyio.sleep(30)
    return "finished"


@fn.task(name="slow-sync", timeout=timedelta(milliseconds=200))
def slow_sync(ctx: fn.TaskContext) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if ctx.is_cancelled:
            return "stopped"
        time.sleep(0.01)
    return "finished"


@fn.workflow(name="tasks-timeouts")
async def run_timeouts(ctx: fn.WorkflowContext) -> list[str]:
    out = []
    for task in (slow_async, slow_sync):
        try:
            out.append(await ctx.schedule(task))
        except fn.TaskTimeout as exc:
            out.append(f"timeout:{exc.task}:{exc.attempts}")
    return out


def test_task_timeouts_for_async_and_sync_tasks(engine: Runtime) -> None:
    # Each task would take 30 s: a result within 25 s means both were timed out.
    result = fn.start_workflow(run_timeouts, workflow_id="timeouts").result(timeout=30)
    assert result == ["timeout:slow-async:1", "timeout:slow-sync:1"]
    failed = [e for e in fn.get_run("timeouts").events if e.type is EventType.TASK_FAILED]
    assert [f.payload["timedOut"] for f in failed] == [True, True]
    assert all(f.payload["error"]["type"] == "TaskTimeout" for f in failed)


def test_retry_policy_rejects_nonsense() -> None:
    with pytest.raises(fn.InvalidInput, match="max_attempts"):
        fn.RetryPolicy(max_attempts=0)
    with pytest.raises(fn.InvalidInput, match="backoff_coefficient"):
        fn.RetryPolicy(backoff_coefficient=0.5)
    with pytest.raises(fn.InvalidInput, match="timeout must be positive"):
        fn.task(timeout=0)
    policy = fn.RetryPolicy(
        initial_interval=timedelta(seconds=1), max_interval=timedelta(seconds=5), jitter=0
    )
    assert [policy.delay_after(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


progress: list[tuple[int, str]] = []


@fn.task(name="ctx-task")
def ctx_task(ctx: fn.TaskContext, n: int) -> int:
    ctx.report_progress(0.5, "half way")
    ctx.logger.info("attempt %d of %s", ctx.attempt, ctx.task_kind)
    return n


@fn.workflow(name="tasks-ctx")
async def run_ctx_task(ctx: fn.WorkflowContext) -> int:
    return await ctx.schedule("ctx-task", 4)


def test_task_context_progress_and_logger(engine: Runtime) -> None:
    assert fn.start_workflow(run_ctx_task, workflow_id="ctx-task").result(timeout=30) == 4
    logs = [(entry.stream, entry.message) for entry in fn.run_logs("ctx-task")]
    assert ("progress", "50% half way") in logs
    assert ("log", "attempt 1 of ctx-task") in logs
