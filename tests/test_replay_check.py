"""fn.check_replay replays recorded runs on the current code without executing anything,
and ctx.patched lets edited code keep serving runs recorded before the edit."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.testing import wait_until

CALLS: dict[str, int] = {}


class Order(BaseModel):
    qty: int


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


@fn.task(name="rc-fetch")
def fetch(n: int) -> int:
    _count("fetch")
    return n + 1


@fn.task(name="rc-enrich")
def enrich(n: int) -> int:
    _count("enrich")
    return n * 10


def _snapshot(store_path: Path) -> list[tuple[object, ...]]:
    frame = client.sql("SELECT execution_id, seq, type, payload FROM events ORDER BY 1, 2")
    runs = client.sql("SELECT id, status, updated_at FROM workflow_executions ORDER BY 1")
    return [tuple(r) for r in frame.itertuples(index=False)] + [
        tuple(r) for r in runs.itertuples(index=False)
    ]


def _record_waiting_run(store_path: Path, workflow_id: str) -> None:
    @fn.workflow(name="rc-flow")
    async def original(ctx: fn.WorkflowContext, n: int) -> int:
        a = await ctx.schedule(fetch, n)
        ok = await ctx.run("side", lambda: _count("side") or True)
        approved = await ctx.promise("approve", type_hint=bool)
        return a if ok and approved else 0

    fn.start(store_path)
    fn.start_workflow(original, 1, workflow_id=workflow_id)
    wait_until(lambda: fn.pending_promises(workflow_id), message="not waiting")


def test_an_unchanged_workflow_replays_ok_and_nothing_runs(store_path: Path) -> None:
    _record_waiting_run(store_path, "rc-1")
    CALLS.clear()
    before = _snapshot(store_path)

    @fn.workflow(name="rc-flow")
    async def same_steps(ctx: fn.WorkflowContext, n: int) -> int:
        a = await ctx.schedule(fetch, n)
        ok = await ctx.run("side", lambda: _count("side") or True)
        approved = await ctx.promise("approve", type_hint=bool)
        b = await ctx.schedule(enrich, a)  # new code after the end of history: fine
        return b if ok and approved else 0

    results = fn.check_replay(same_steps)
    assert [(r.workflow_id, r.ok, r.error) for r in results] == [("rc-1", True, None)]
    assert results[0].steps == 3
    assert "end of history" in results[0].stopped
    assert CALLS == {}  # no task body, no ctx.run function
    assert _snapshot(store_path) == before  # nothing written


def test_a_changed_step_is_reported_with_its_step_and_nothing_runs(store_path: Path) -> None:
    _record_waiting_run(store_path, "rc-2")
    CALLS.clear()
    before = _snapshot(store_path)

    @fn.workflow(name="rc-flow")
    async def reordered(ctx: fn.WorkflowContext, n: int) -> int:
        a = await ctx.schedule(enrich, n)  # history has rc-fetch here
        return a

    [result] = fn.check_replay("rc-flow", runs=["rc-2"])
    assert not result.ok
    assert isinstance(result.error, fn.DeterminismViolation)
    assert result.error.step == 1
    assert result.error.recorded == "schedule(task 'rc-fetch')"
    assert result.error.issued == "schedule(task 'rc-enrich')"
    assert "breaks at step 1" in str(result)
    assert CALLS == {}
    assert _snapshot(store_path) == before
    del reordered


def test_a_run_stopped_mid_task_ends_the_check_at_the_end_of_history(
    store_path: Path,
) -> None:
    """A task with no recorded outcome (in flight) is where history ends: not a violation."""
    import threading

    gate = threading.Event()

    @fn.task(name="rc-slow")
    def slow(n: int) -> int:
        _count("slow")
        gate.wait(60)
        return n

    @fn.workflow(name="rc-mid")
    async def mid(ctx: fn.WorkflowContext) -> int:
        h = ctx.schedule_async(slow, 1)
        await ctx.set("started", True)
        return await h

    fn.start(store_path)
    fn.start_workflow(mid, workflow_id="rc-mid-1")
    wait_until(lambda: CALLS.get("slow"), message="task not started")
    wait_until(
        lambda: any(e.type is EventType.STATE_SET for e in fn.get_run("rc-mid-1").events),
        message="state not recorded",
    )
    CALLS.clear()
    try:
        [result] = fn.check_replay(mid)
        assert result.ok, result
        assert result.steps == 2
        assert CALLS == {}

        # Waiting for the task before the recorded state change: the order changed.
        @fn.workflow(name="rc-mid")
        async def waits_first(ctx: fn.WorkflowContext) -> int:
            value = int(await ctx.schedule(slow, 1))
            await ctx.set("started", True)
            return value

        [changed] = fn.check_replay(waits_first)
        assert isinstance(changed.error, fn.DeterminismViolation), changed
        assert (changed.error.step, changed.error.recorded) == (2, "set('started')")
        assert changed.error.issued == "a wait on 'rc-slow'"
        assert CALLS == {}
    finally:
        gate.set()
    assert fn.get_handle("rc-mid-1").result(timeout=30) == 1


def test_unknown_runs_and_runs_of_another_workflow_are_refused(store_path: Path) -> None:
    _record_waiting_run(store_path, "rc-3")

    @fn.workflow(name="rc-other")
    async def other(ctx: fn.WorkflowContext) -> None:
        return None

    with pytest.raises(fn.UnknownWorkflow, match="nope"):
        fn.check_replay("rc-flow", runs=["nope"])
    with pytest.raises(fn.InvalidInput, match="is a run of 'rc-flow'"):
        fn.check_replay(other, runs=["rc-3"])
    with pytest.raises(fn.UnknownWorkflowKind, match="no-such-workflow"):
        fn.check_replay("no-such-workflow")


# -- ctx.patched ---------------------------------------------------------------------------


def test_patched_keeps_old_runs_on_the_old_branch_and_new_runs_on_the_new(
    store_path: Path,
) -> None:
    @fn.workflow(name="rc-patch")
    async def v1(ctx: fn.WorkflowContext, n: int) -> str:
        await ctx.schedule(fetch, n)
        await ctx.promise("go")
        return "old"

    fn.start(store_path)
    fn.start_workflow(v1, 1, workflow_id="patch-old")
    wait_until(lambda: fn.pending_promises("patch-old"), message="not waiting")
    fn.stop()

    seen: list[bool] = []

    @fn.workflow(name="rc-patch")
    async def v2(ctx: fn.WorkflowContext, n: int) -> str:
        use_new = ctx.patched("enrich-first")
        seen.append(use_new)
        if use_new:
            await ctx.schedule(enrich, n)
        else:
            await ctx.schedule(fetch, n)
        await ctx.promise("go")
        return "new" if use_new else "old"

    # The old run replays on the new code: history has rc-fetch, no marker -> old branch.
    assert [(r.workflow_id, r.ok) for r in fn.check_replay(v2, store=store_path)] == [
        ("patch-old", True)
    ]
    fn.start(store_path)
    fn.resolve_promise("patch-old", "go", True)
    assert fn.get_handle("patch-old").result(timeout=30) == "old"

    # A new run takes the new branch and records the marker.
    fn.start_workflow(v2, 2, workflow_id="patch-new")
    wait_until(lambda: fn.pending_promises("patch-new"), message="not waiting")
    events = fn.get_run("patch-new").events
    assert [e.payload for e in events if e.type is EventType.PATCH_MARKER] == [
        {"patchId": "enrich-first"}
    ]
    fn.stop()

    # Replaying the new run (recovery in a new engine) takes the new branch again.
    seen.clear()
    [check] = fn.check_replay(v2, runs=["patch-new"], store=store_path)
    assert check.ok, check
    assert seen == [True]
    fn.start(store_path)
    fn.resolve_promise("patch-new", "go", True)
    assert fn.get_handle("patch-new").result(timeout=30) == "new"
    assert fn.get_run("patch-new").status is RunStatus.COMPLETED
    kinds = [e.payload.get("taskKind") for e in fn.get_run("patch-new").events]
    assert kinds.count("rc-enrich") == 1 and "rc-fetch" not in kinds


def test_patched_needs_a_name(store_path: Path) -> None:
    @fn.workflow(name="rc-patch-bad")
    async def bad(ctx: fn.WorkflowContext) -> bool:
        return ctx.patched("")

    fn.start(store_path)
    with pytest.raises(fn.WorkflowFailed, match="non-empty patch id"):
        fn.start_workflow(bad, workflow_id="pb-1").result(timeout=30)


# -- fn.step_record ------------------------------------------------------------------------


def test_step_record_gives_a_failed_steps_record_and_reruns_the_current_code(
    store_path: Path,
) -> None:
    @fn.task(name="rc-price")
    def price(order: Order) -> float:
        _count("price")
        print(f"pricing {order.qty}")
        return 10 / order.qty

    @fn.workflow(name="rc-debug")
    async def pricing(ctx: fn.WorkflowContext, qty: int) -> float:
        await ctx.set("qty", qty)
        return float(await ctx.schedule(price, Order(qty=qty)))

    fn.start(store_path)
    with pytest.raises(fn.WorkflowFailed):
        fn.start_workflow(pricing, 0, workflow_id="dbg-1").result(timeout=30)

    record = fn.step_record("dbg-1", 2)
    assert record == fn.step_record("dbg-1", "rc-price")
    assert (record.number, record.name, record.kind, record.status) == (
        2,
        "rc-price",
        "task",
        "FAILED",
    )
    assert record.input == Order(qty=0)  # typed by the task's annotation
    assert record.input_json == {"qty": 0}
    assert record.error is not None and record.error.type == "ZeroDivisionError"
    assert "10 / order.qty" in record.error.traceback
    assert [a.number for a in record.attempts] == [1]
    assert [e.message for e in record.logs] == ["pricing 0"]
    assert record.duration is not None and record.duration >= 0

    # Fix the task ("re-run its cell") and call it with the recorded input: unrecorded.
    @fn.task(name="rc-price")
    def fixed(order: Order) -> float:
        _count("fixed")
        return 10 / max(order.qty, 1)

    events_before = len(fn.get_run("dbg-1").events)
    CALLS.clear()
    assert record.rerun() == 10.0
    assert CALLS == {"fixed": 1}
    assert len(fn.get_run("dbg-1").events) == events_before

    state = fn.step_record("dbg-1", 1)
    assert (state.kind, state.name) == ("state", "qty")
    with pytest.raises(fn.InvalidInput, match="only task steps"):
        state.rerun()


def test_step_record_refuses_unknown_runs_and_steps(store_path: Path) -> None:
    _record_waiting_run(store_path, "dbg-2")
    assert fn.step_record("dbg-2", 1).output == 2
    with pytest.raises(fn.UnknownWorkflow, match="no-run"):
        fn.step_record("no-run", 1)
    with pytest.raises(fn.InvalidInput, match=r"has no step 9 \(its steps: 1\.\.3\)"):
        fn.step_record("dbg-2", 9)
    with pytest.raises(fn.InvalidInput, match="has no step named 'nope'"):
        fn.step_record("dbg-2", "nope")
    with pytest.raises(fn.InvalidInput, match="has no step 0"):
        fn.step_record("dbg-2", 0)


def test_rerun_gives_tasks_that_take_ctx_a_stand_in(store_path: Path) -> None:
    @fn.task(name="rc-ctx")
    async def with_ctx(ctx: fn.TaskContext, n: int) -> str:
        await ctx.report_progress(0.5)
        return f"{ctx.task_kind}:{ctx.workflow_id}:{ctx.attempt}:{n}"

    @fn.workflow(name="rc-ctx-flow")
    async def flow(ctx: fn.WorkflowContext) -> str:
        return str(await ctx.schedule(with_ctx, 3))

    fn.start(store_path)
    assert fn.start_workflow(flow, workflow_id="dbg-3").result(timeout=30) == "rc-ctx:dbg-3:1:3"
    record = fn.step_record("dbg-3", "rc-ctx")
    assert record.output == "rc-ctx:dbg-3:1:3"
    assert record.rerun() == "rc-ctx:dbg-3:2:3"  # no loop running here: run to its end


def test_sync_workflows_timers_signals_and_children_replay_without_running(
    store_path: Path,
) -> None:
    from datetime import timedelta

    @fn.workflow(name="rc-child")
    async def child(ctx: fn.WorkflowContext, n: int) -> int:
        await ctx.promise("child-go")
        return n

    @fn.workflow(name="rc-sync")
    def sync_flow(ctx: fn.SyncWorkflowContext, n: int) -> int:
        a = ctx.schedule(fetch, n)
        ctx.sleep(timedelta(milliseconds=1))
        ctx.run("side", lambda: _count("side") or 1)
        return int(ctx.wait_for_signal("more")) + a

    @fn.workflow(name="rc-parent")
    async def parent(ctx: fn.WorkflowContext) -> int:
        await ctx.schedule(fetch, 1)
        return int(await ctx.schedule_workflow(child, 5))

    fn.start(store_path)
    fn.start_workflow(sync_flow, 1, workflow_id="rc-sync-1")
    fn.start_workflow(parent, workflow_id="rc-parent-1")
    wait_until(
        lambda: (
            any(e.type is EventType.OPERATION_COMPLETED for e in fn.get_run("rc-sync-1").events)
            and fn.pending_promises("rc-parent-1/rc-child-1")
        ),
        message="runs not waiting",
    )
    CALLS.clear()
    [sync_result] = fn.check_replay(sync_flow)
    assert (sync_result.ok, sync_result.steps) == (True, 3), sync_result
    assert "end of history" in sync_result.stopped
    [parent_result] = fn.check_replay(parent)
    assert (parent_result.ok, parent_result.steps) == (True, 2), parent_result
    assert CALLS == {}

    @fn.workflow(name="rc-sync")
    def sync_changed(ctx: fn.SyncWorkflowContext, n: int) -> int:
        a = ctx.schedule(fetch, n)
        ctx.run("side", lambda: _count("side") or 1)  # history has the sleep here
        return a

    [broken] = fn.check_replay(sync_changed)
    assert isinstance(broken.error, fn.DeterminismViolation)
    assert (broken.error.step, broken.error.recorded) == (2, "sleep()")
    assert CALLS == {}
    fn.signal_workflow("rc-sync-1", "more", 1)
    fn.resolve_promise("rc-parent-1/rc-child-1", "child-go", True)
    assert fn.get_handle("rc-parent-1").result(timeout=30) == 5


def test_patched_in_a_sync_workflow_records_one_marker_and_answers_alike(
    store_path: Path,
) -> None:
    @fn.workflow(name="rc-patch-sync")
    def flow(ctx: fn.SyncWorkflowContext) -> list[bool]:
        ctx.deprecate_patch("old-one")
        return [ctx.patched("p"), ctx.patched("p")]

    fn.start(store_path)
    assert fn.start_workflow(flow, workflow_id="ps-1").result(timeout=30) == [True, True]
    markers = [e.payload for e in fn.get_run("ps-1").events if e.type is EventType.PATCH_MARKER]
    assert markers == [{"patchId": "p"}]
    assert [r.ok for r in fn.check_replay(flow, runs=["ps-1"])] == [True]
