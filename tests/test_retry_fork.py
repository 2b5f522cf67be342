"""Issue 15: retry a failed run, fork a run from a step, id_reuse on start.

Side effects are counted: steps before the retried (or forked) step never run again, the
rest do, with the code registered now.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.errors import (
    DeterminismViolation,
    DuplicateWorkflowId,
    InvalidInput,
    UnknownWorkflow,
)
from flovyn_nb.history.events import events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.testing import wait_until

calls: Counter[str] = Counter()
broken = {"flaky": True, "child": True, "tail": True}


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    broken.update(flaky=True, child=True, tail=True)


@fn.task(name="rf-step")
def step(name: str) -> str:
    calls[name] += 1
    return name.upper()


def _flaky_v1(x: int) -> int:
    calls["flaky-v1"] += 1
    raise ZeroDivisionError("still broken")


def _flaky_v2(x: int) -> int:
    calls["flaky-v2"] += 1
    return x * 10


fn.task(name="rf-flaky")(_flaky_v1)


@fn.workflow(name="rf-flow")
async def flow(ctx: fn.WorkflowContext, x: int) -> list[object]:
    a = await ctx.schedule(step, "a")
    b = await ctx.schedule(step, "b")
    f = await ctx.schedule("rf-flaky", x)  # by name: the task registered now
    c = await ctx.schedule(step, "c")
    return [a, b, f, c]


def _fix_flaky() -> None:
    fn.task(name="rf-flaky")(_flaky_v2)  # as re-running a fixed cell does


def _types(workflow_id: str) -> list[str]:
    return [e.type.value for e in fn.get_run(workflow_id).events]


def test_retry_reuses_the_steps_before_the_failed_one_and_runs_the_rest_with_new_code(
    engine: Runtime,
) -> None:
    fn.task(name="rf-flaky")(_flaky_v1)
    h = fn.start_workflow(flow, 4, workflow_id="rf-1")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    assert calls == {"a": 1, "b": 1, "flaky-v1": 1}
    _fix_flaky()
    again = fn.retry_run("rf-1")
    assert (again.workflow_id, again.execution_id) == ("rf-1", h.execution_id)  # same run
    assert again.result(timeout=30) == ["A", "B", 40, "C"]
    assert h.result(timeout=30) == ["A", "B", 40, "C"]
    assert calls == {"a": 1, "b": 1, "flaky-v1": 1, "flaky-v2": 1, "c": 1}
    run = fn.get_run("rf-1")
    assert run.status is RunStatus.COMPLETED
    types = _types("rf-1")
    assert types.count("WORKFLOW_EXECUTION_FAILED") == 1  # the first attempt's, kept
    [marker] = [e for e in run.events if e.type is EventType.WORKFLOW_RETRIED]
    assert marker.payload["attempt"] == 2
    assert marker.payload["fromStep"] == 3
    folded = fold(events_of(run.events))
    assert folded.status is RunStatus.COMPLETED and folded.attempt == 2
    assert [s.label for s in folded.commands] == ["rf-step", "rf-step #2", "rf-flaky", "rf-step #3"]
    [first] = folded.earlier
    assert first.status is RunStatus.FAILED and first.from_step == 3
    assert [s.status.value for s in first.steps] == ["COMPLETED", "COMPLETED", "FAILED"]
    # New steps got ids of their own: the retried task is not the failed one.
    assert folded.commands[2].key != first.steps[2].key


def test_retry_refuses_runs_that_did_not_fail_and_unknown_ids(engine: Runtime) -> None:
    fn.task(name="rf-flaky")(_flaky_v2)
    h = fn.start_workflow(flow, 1, workflow_id="rf-done")
    h.result(timeout=30)
    with pytest.raises(InvalidInput, match=r"'rf-done' is completed.*fork_run"):
        fn.retry_run("rf-done")
    with pytest.raises(UnknownWorkflow, match=r"no-such-run.*store"):
        fn.retry_run("no-such-run")
    assert _types("rf-done").count("WORKFLOW_RETRIED") == 0


def test_retry_a_second_time_keeps_every_attempt(engine: Runtime) -> None:
    fn.task(name="rf-flaky")(_flaky_v1)
    h = fn.start_workflow(flow, 2, workflow_id="rf-twice")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    with pytest.raises(fn.WorkflowFailed):
        fn.retry_run("rf-twice").result(timeout=30)  # not fixed yet: fails again
    _fix_flaky()
    assert fn.retry_run("rf-twice").result(timeout=30) == ["A", "B", 20, "C"]
    assert calls == {"a": 1, "b": 1, "flaky-v1": 2, "flaky-v2": 1, "c": 1}
    folded = fold(events_of(fn.get_run("rf-twice").events))
    assert folded.attempt == 3
    assert [a.status for a in folded.earlier] == [RunStatus.FAILED, RunStatus.FAILED]


# -- children, timers, promises --------------------------------------------------------


@fn.task(name="rf-child-task")
def child_task(x: int) -> int:
    calls["child-task"] += 1
    if broken["child"]:
        raise ValueError("child broken")
    return x + 1


@fn.workflow(name="rf-child")
async def child(ctx: fn.WorkflowContext, x: int) -> int:
    await ctx.schedule(step, "child-before")
    return int(await ctx.schedule(child_task, x))


@fn.workflow(name="rf-parent")
async def parent(ctx: fn.WorkflowContext, x: int) -> int:
    await ctx.schedule(step, "parent-before")
    await ctx.sleep(timedelta(milliseconds=50))
    return int(await ctx.schedule_workflow(child, x)) * 2


def test_retry_of_a_failed_child_workflow_retries_the_child_and_the_parent(
    engine: Runtime,
) -> None:
    h = fn.start_workflow(parent, 5, workflow_id="rf-parent-1")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    assert calls["parent-before"] == 1 and calls["child-task"] == 1
    broken["child"] = False
    assert fn.retry_run("rf-parent-1").result(timeout=30) == 12
    # Before the failure point nothing ran again: the parent's step, its timer, the
    # child's first step; the child's failed task ran again.
    assert calls["parent-before"] == 1
    assert calls["child-before"] == 1
    assert calls["child-task"] == 2
    [child_run] = fn.list_runs(kind="rf-child")
    assert child_run.status is RunStatus.COMPLETED
    assert _types(child_run.workflow_id).count("WORKFLOW_RETRIED") == 1
    assert _types("rf-parent-1").count("TIMER_STARTED") == 1  # the timer was not re-armed


@fn.task(name="rf-tail")
def tail(value: str) -> str:
    calls["tail"] += 1
    if broken["tail"]:
        raise RuntimeError("tail broken")
    return f"done:{value}"


@fn.workflow(name="rf-approval")
async def approval(ctx: fn.WorkflowContext) -> str:
    await ctx.schedule(step, "prepare")
    await ctx.sleep(timedelta(milliseconds=20))
    answer = await ctx.promise("ok", timeout=timedelta(seconds=60), type_hint=str)
    return str(await ctx.schedule(tail, answer))


def test_retry_of_a_run_with_a_timer_and_a_resolved_promise_does_not_wait_again(
    engine: Runtime,
) -> None:
    h = fn.start_workflow(approval, workflow_id="rf-approve-1")
    wait_until(lambda: fn.pending_promises("rf-approve-1"), timeout=30)
    fn.resolve_promise("rf-approve-1", "ok", "yes")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    broken["tail"] = False
    assert fn.retry_run("rf-approve-1").result(timeout=30) == "done:yes"
    assert calls == {"prepare": 1, "tail": 2}
    assert _types("rf-approve-1").count("PROMISE_CREATED") == 1


patience = {"seconds": 0.1}


@fn.workflow(name="rf-quick-promise")
async def quick_promise(ctx: fn.WorkflowContext) -> str:
    await ctx.schedule(step, "before-promise")
    wait = timedelta(seconds=patience["seconds"])
    return str(await ctx.promise("late", timeout=wait, type_hint=str))


def test_retry_of_a_promise_timeout_waits_for_the_promise_again(engine: Runtime) -> None:
    h = fn.start_workflow(quick_promise, workflow_id="rf-timeout-1")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    patience["seconds"] = 600  # the fix: wait longer
    again = fn.retry_run("rf-timeout-1")
    wait_until(lambda: fn.pending_promises("rf-timeout-1"), timeout=30)
    fn.resolve_promise("rf-timeout-1", "late", "finally")
    assert again.result(timeout=30) == "finally"
    assert calls == {"before-promise": 1}


@fn.workflow(name="rf-wait")
async def waiting(ctx: fn.WorkflowContext) -> str:
    await ctx.schedule(step, "w-before")
    return str(await ctx.promise("go", type_hint=str))


def test_retry_of_a_cancelled_run_waits_where_it_was_cancelled(engine: Runtime) -> None:
    h = fn.start_workflow(waiting, workflow_id="rf-cancel-1")
    wait_until(lambda: fn.pending_promises("rf-cancel-1"), timeout=30)
    fn.cancel_workflow("rf-cancel-1")
    with pytest.raises(fn.WorkflowCancelled):
        h.result(timeout=30)
    with pytest.raises(InvalidInput, match=r"running|waiting"):
        fn.retry_run(fn.start_workflow(waiting, workflow_id="rf-cancel-2").workflow_id)
    again = fn.retry_run("rf-cancel-1")
    wait_until(lambda: fn.pending_promises("rf-cancel-1"), timeout=30)
    fn.resolve_promise("rf-cancel-1", "go", "went")
    assert again.result(timeout=30) == "went"
    assert calls["w-before"] == 2  # one for each run, none again for the retried one


# -- fork ------------------------------------------------------------------------------


def test_fork_reuses_the_steps_before_the_chosen_one_and_leaves_the_origin(
    engine: Runtime,
) -> None:
    _fix_flaky()
    origin = fn.start_workflow(flow, 3, workflow_id="rf-origin")
    assert origin.result(timeout=30) == ["A", "B", 30, "C"]
    before = fn.get_run("rf-origin")
    calls.clear()
    fork = fn.fork_run("rf-origin", 2)
    assert fork.workflow_id == "rf-origin-fork-1"
    assert fork.result(timeout=30) == ["A", "B", 30, "C"]
    assert calls == {"b": 1, "flaky-v2": 1, "c": 1}  # step 1 ("a") was reused
    started = fn.get_run(fork.workflow_id).events[0].payload
    assert (started["forkedFrom"], started["fromStep"]) == ("rf-origin", 2)
    after = fn.get_run("rf-origin")
    assert (after.status, len(after.events)) == (before.status, len(before.events))
    # by name (first occurrence), a new input and an id of our own
    calls.clear()
    named = fn.fork_run("rf-origin", "rf-flaky", workflow_id="rf-named", input=7)
    assert named.result(timeout=30) == ["A", "B", 70, "C"]
    assert calls == {"flaky-v2": 1, "c": 1}
    folded = fold(events_of(fn.get_run("rf-named").events))
    assert (folded.forked_from, folded.from_step, folded.input) == ("rf-origin", 3, 7)
    assert fn.fork_run("rf-origin", 2).workflow_id == "rf-origin-fork-2"


def test_fork_refuses_bad_steps_and_a_prefix_the_code_no_longer_issues(
    engine: Runtime,
) -> None:
    _fix_flaky()
    fn.start_workflow(flow, 1, workflow_id="rf-src").result(timeout=30)
    with pytest.raises(InvalidInput, match="step 9 is out of range: the run has 4 steps"):
        fn.fork_run("rf-src", 9)
    with pytest.raises(InvalidInput, match="no step named 'nope'"):
        fn.fork_run("rf-src", "nope")
    with pytest.raises(InvalidInput, match="already used"):
        fn.fork_run("rf-src", 2, workflow_id="rf-src")
    with pytest.raises(UnknownWorkflow):
        fn.fork_run("rf-missing", 1)

    @fn.workflow(name="rf-flow")
    async def changed(ctx: fn.WorkflowContext, x: int) -> str:
        await ctx.schedule(step, "a")
        await ctx.schedule("rf-flaky", x)  # where step 2 was schedule(rf-step)
        return "changed"

    try:
        calls.clear()
        with pytest.raises(DeterminismViolation, match="step 2") as info:
            fn.fork_run("rf-src", 4)
        assert info.value.step == 2
        assert calls == {}  # nothing was executed by the check
        assert not [r for r in fn.list_runs() if r.workflow_id.startswith("rf-src-fork")]
    finally:
        fn.workflow(name="rf-flow")(flow.fn)


# -- id_reuse ----------------------------------------------------------------------------


def test_id_reuse_return_retry_failed_and_reject(engine: Runtime) -> None:
    fn.task(name="rf-flaky")(_flaky_v1)
    h = fn.start_workflow(flow, 2, workflow_id="rf-reuse")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    _fix_flaky()
    same = fn.start_workflow(flow, 2, workflow_id="rf-reuse")  # "return": the old failure
    with pytest.raises(fn.WorkflowFailed):
        same.result(timeout=30)
    with pytest.raises(DuplicateWorkflowId, match="rf-reuse"):
        fn.start_workflow(flow, 2, workflow_id="rf-reuse", id_reuse="reject")
    with pytest.raises(InvalidInput, match="id_reuse must be one of"):
        fn.start_workflow(flow, 2, workflow_id="rf-reuse", id_reuse="again")
    retried = fn.start_workflow(flow, 2, workflow_id="rf-reuse", id_reuse="retry_failed")
    assert retried.result(timeout=30) == ["A", "B", 20, "C"]
    # completed now: retry_failed hands it back as it is
    again = fn.start_workflow(flow, 2, workflow_id="rf-reuse", id_reuse="retry_failed")
    assert again.result(timeout=30) == ["A", "B", 20, "C"]
    assert _types("rf-reuse").count("WORKFLOW_RETRIED") == 1


@fn.workflow(name="rf-sync")
def sync_flow(ctx: fn.SyncWorkflowContext, x: int) -> list[object]:
    pick = ctx.random()  # replayed with the origin's value in a fork
    a = ctx.schedule(step, "sync-a")
    b = ctx.schedule(step, "sync-b" if pick < 2 else "never")
    return [a, b, x, round(pick, 6)]


def test_fork_of_a_sync_workflow_replays_the_origins_random_values(engine: Runtime) -> None:
    first = fn.start_workflow(sync_flow, 1, workflow_id="rf-sync-1").result(timeout=30)
    calls.clear()
    forked = fn.fork_run("rf-sync-1", 2, input=2).result(timeout=30)
    assert forked == ["SYNC-A", "SYNC-B", 2, first[3]]
    assert calls == {"sync-b": 1}


def test_retry_is_refused_when_the_code_no_longer_issues_the_reused_steps(
    engine: Runtime,
) -> None:
    fn.task(name="rf-flaky")(_flaky_v1)
    h = fn.start_workflow(flow, 1, workflow_id="rf-changed")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)

    @fn.workflow(name="rf-flow")
    async def changed(ctx: fn.WorkflowContext, x: int) -> str:
        await ctx.schedule("rf-flaky", x)  # where step 1 was schedule(rf-step)
        return "changed"

    try:
        calls.clear()
        with pytest.raises(DeterminismViolation, match="step 1"):
            fn.retry_run("rf-changed")
        assert calls == {}
        run = fn.get_run("rf-changed")
        assert run.status is RunStatus.FAILED  # nothing was written
        assert EventType.WORKFLOW_RETRIED not in {e.type for e in run.events}
    finally:
        fn.workflow(name="rf-flow")(flow.fn)
