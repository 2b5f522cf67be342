"""Issue 14: errors carry Flovyn's attribute names; TaskCancelled exists."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.testing import wait_until


@fn.workflow(name="fc-promise")
async def fc_promise(ctx: fn.WorkflowContext, timeout: float | None = None) -> str:
    try:
        await ctx.promise("approval", timeout=timeout)
    except fn.PromiseRejected as exc:
        return f"rejected:{exc.promise_name}:{exc.rejection_reason}:{exc.reason}"
    except fn.PromiseTimeout as exc:
        return f"timeout:{exc.promise_name}:{exc.name}"
    return "resolved"


def test_promise_errors_carry_flovyn_names(engine: Runtime) -> None:
    h = fn.start_workflow(fc_promise, None, workflow_id="fc-rej")
    wait_until(lambda: any(p.name == "approval" for p in fn.pending_promises("fc-rej")))
    fn.reject_promise("fc-rej", "approval", "too expensive")
    assert h.result(timeout=30) == "rejected:approval:too expensive:too expensive"
    h2 = fn.start_workflow(fc_promise, 0.05, workflow_id="fc-timeout")
    assert h2.result(timeout=30) == "timeout:approval:approval"


@fn.task(name="fc-slow", timeout=timedelta(milliseconds=150))
async def fc_slow() -> str:
    await anyio.sleep(30)
    return "finished"


@fn.task(name="fc-bad", retry_policy=fn.RetryPolicy(max_attempts=1))
def fc_bad() -> str:
    raise ValueError("no")


@fn.workflow(name="fc-tasks")
async def fc_tasks(ctx: fn.WorkflowContext) -> list[str]:
    out = []
    try:
        await ctx.schedule(fc_slow)
    except fn.TaskTimeout as exc:
        out.append(f"timeout:{exc.timeout_ms}:{exc.retryable}")
    try:
        await ctx.schedule(fc_bad)
    except fn.TaskFailed as exc:
        out.append(f"failed:{exc.retryable}:{exc.error_type}")
    return out


def test_task_errors_carry_flovyn_names(engine: Runtime) -> None:
    h = fn.start_workflow(fc_tasks, workflow_id="fc-tasks")
    assert h.result(timeout=30) == ["timeout:150:False", "failed:False:ValueError"]


def test_other_flovyn_names_and_task_cancelled() -> None:
    from flovyn_nb import errors

    cancelled = fn.WorkflowCancelled(workflow_id="w", reason="user asked")
    assert (cancelled.reason, cancelled.workflow_id) == ("user asked", "w")
    assert fn.WorkflowCancelled().reason == ""
    violation = fn.DeterminismViolation("x", step=3, recorded="task a", issued="task b")
    assert violation.details == "step 3: recorded 'task a', issued 'task b'"
    assert fn.TaskCancelled is errors.TaskCancelled
    assert issubclass(fn.TaskCancelled, fn.FlovynError)
    assert (fn.TaskCancelled(task="t", reason="r").task, fn.TaskCancelled(reason="r").reason) == (
        "t",
        "r",
    )
    assert "TaskCancelled" in errors.__doc__  # the tree in the docstring stays current


# -- the client: handle.signal, result(timeout=timedelta), signal-with-start ---------------


@fn.workflow(name="fc-signals")
async def fc_signals(ctx: fn.WorkflowContext, label: str) -> str:
    # Wait on a promise first, so that the signals arrive before the run waits for them.
    await ctx.promise("go")
    first = await ctx.wait_for_signal("add")
    second = await ctx.wait_for_signal("add")
    return f"{label}:{first}+{second}"


def test_signal_with_start_starts_once_and_the_run_sees_early_signals(engine: Runtime) -> None:
    h = fn.signal_with_start_workflow(fc_signals, "first", "add", 1, workflow_id="fc-sws")
    # The same id again: no second run, the input stays the first one's, the signal arrives.
    again = fn.signal_with_start_workflow(fc_signals, "other", "add", 2, workflow_id="fc-sws")
    assert (again.workflow_id, again.execution_id) == (h.workflow_id, h.execution_id)
    wait_until(lambda: any(p.name == "go" for p in fn.pending_promises("fc-sws")))
    fn.resolve_promise("fc-sws", "go", None)
    assert h.result(timeout=timedelta(seconds=10)) == "first:1+2"
    assert [r.workflow_id for r in fn.list_runs()].count("fc-sws") == 1


def test_handle_signal_and_result_with_a_timedelta(engine: Runtime) -> None:
    h = fn.start_workflow(fc_signals, "h", workflow_id="fc-handle")
    h.signal("add", "a")
    h.signal("add", "b")
    fn.resolve_promise("fc-handle", "go", None)
    assert h.result(timeout=timedelta(seconds=10)) == "h:a+b"
    with pytest.raises(fn.InvalidInput, match="give seconds"):
        h.result(timeout="10")  # type: ignore[arg-type]
