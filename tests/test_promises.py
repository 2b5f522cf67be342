"""Promises (human-in-the-loop waits) and signals."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path

import pydantic
import pytest

import flovyn_nb as fn
from flovyn_nb.engine.engine import Engine
from flovyn_nb.model import EventType, PromiseStatus, RunStatus
from flovyn_nb.testing import FakeClock, temporary_engine, wait_until


class Decision(pydantic.BaseModel):
    approved: bool
    comment: str = ""


@fn.workflow(name="p-approval")
async def approval(ctx: fn.WorkflowContext, timeout: float | None = None) -> str:
    try:
        decision = await ctx.promise("approval", timeout=timeout, type_hint=Decision)
    except fn.PromiseRejected as exc:
        return f"rejected: {exc.reason}"
    except fn.PromiseTimeout:
        return "timed out"
    assert isinstance(decision, Decision)
    return f"approved={decision.approved} {decision.comment}".strip()


def _waiting(workflow_id: str) -> list[fn.PromiseInfo]:
    return wait_until(lambda: fn.pending_promises(workflow_id), message="promise never created")


def test_resolve_a_typed_promise(engine: Engine) -> None:
    h = fn.start_workflow(approval, None, workflow_id="p-1")
    [promise] = _waiting("p-1")
    assert promise.name == "approval" and promise.status is PromiseStatus.PENDING
    assert promise.schema["title"] == "Decision"
    assert fn.get_run("p-1").status is RunStatus.WAITING
    fn.resolve_promise("p-1", "approval", Decision(approved=True, comment="ship it"))
    assert h.result(timeout=10) == "approved=True ship it"
    types = [e.type for e in fn.get_run("p-1").events]
    assert types[-2:] == [EventType.PROMISE_RESOLVED, EventType.WORKFLOW_COMPLETED]


def test_bad_value_is_refused_and_changes_nothing(engine: Engine) -> None:
    h = fn.start_workflow(approval, None, workflow_id="p-bad")
    _waiting("p-bad")
    before = fn.sql("select * from promises").to_dict("records")
    events_before = len(fn.get_run("p-bad").events)
    with pytest.raises(fn.InvalidInput, match="approved"):
        fn.resolve_promise("p-bad", "approval", {"approved": "perhaps"})
    assert fn.sql("select * from promises").to_dict("records") == before
    assert len(fn.get_run("p-bad").events) == events_before
    fn.resolve_promise("p-bad", "approval", {"approved": False})
    assert h.result(timeout=10) == "approved=False"


def test_resolving_twice_keeps_the_first_value(engine: Engine) -> None:
    h = fn.start_workflow(approval, None, workflow_id="p-twice")
    _waiting("p-twice")
    fn.resolve_promise("p-twice", "approval", {"approved": True, "comment": "first"})
    with pytest.raises(fn.PromiseAlreadyResolved, match="already resolved"):
        fn.resolve_promise("p-twice", "approval", {"approved": False, "comment": "second"})
    assert h.result(timeout=10) == "approved=True first"
    values = fn.sql("select value from promises")["value"].tolist()
    assert values == ['{"approved":true,"comment":"first"}']


def test_reject_raises_in_the_workflow(engine: Engine) -> None:
    h = fn.start_workflow(approval, None, workflow_id="p-rej")
    _waiting("p-rej")
    fn.reject_promise("p-rej", "approval", "too expensive")
    assert h.result(timeout=10) == "rejected: too expensive"
    assert fn.get_run("p-rej").events[-2].type is EventType.PROMISE_REJECTED


@fn.task(name="p-slow-step")
def slow_step(gate: str) -> None:
    wait_until(lambda: gate in resolved_early, timeout=10)


resolved_early: set[str] = set()


@fn.workflow(name="p-late")
async def late_promise(ctx: fn.WorkflowContext) -> int:
    await ctx.schedule(slow_step, "late-1")
    return await ctx.promise("number", type_hint=int)


def test_resolve_before_the_workflow_reaches_the_promise(engine: Engine) -> None:
    h = fn.start_workflow(late_promise, workflow_id="late-1")
    fn.resolve_promise("late-1", "number", 41)
    resolved_early.add("late-1")
    assert h.result(timeout=10) == 41
    types = [e.type for e in fn.get_run("late-1").events]
    assert types.index(EventType.PROMISE_CREATED) < types.index(EventType.PROMISE_RESOLVED)


def test_timeout_fires_at_its_deadline(engine: Engine) -> None:
    h = fn.start_workflow(approval, 0.3, workflow_id="p-timeout")
    assert h.result(timeout=10) == "timed out"
    events = fn.get_run("p-timeout").events
    created = next(e for e in events if e.type is EventType.PROMISE_CREATED)
    timed_out = next(e for e in events if e.type is EventType.PROMISE_TIMEOUT)
    assert timed_out.payload == {
        "promiseId": created.payload["promiseId"],
        "promiseName": "approval",
    }
    deadline = datetime.fromisoformat(created.payload["timeoutAt"]).timestamp()
    lateness = timed_out.ts.timestamp() - deadline
    assert 0 <= lateness < 0.05, f"fired {lateness * 1000:.1f} ms after its deadline"
    assert fn.sql("select status from promises")["status"].tolist() == ["TIMED_OUT"]
    with pytest.raises(fn.PromiseAlreadyResolved, match="already timed out"):
        fn.resolve_promise("p-timeout", "approval", {"approved": True})


def test_four_hour_timeout_on_a_fake_clock(store_path) -> None:
    clock = FakeClock()
    with temporary_engine(store=store_path, clock=clock):
        h = fn.start_workflow(approval, timedelta(hours=4).total_seconds(), workflow_id="p-4h")
        [promise] = _waiting("p-4h")
        assert promise.timeout_at is not None
        assert promise.timeout_at.timestamp() == pytest.approx(clock.now() + 4 * 3600, abs=1)
        clock.advance(timedelta(hours=3, minutes=59))
        with pytest.raises(TimeoutError):
            h.result(timeout=0.1)
        clock.advance(timedelta(minutes=2))
        assert h.result(timeout=10) == "timed out"


def test_promise_errors_name_the_problem(engine: Engine) -> None:
    with pytest.raises(fn.UnknownWorkflow, match="no run with workflow id 'ghost'"):
        fn.resolve_promise("ghost", "approval", True)


@fn.workflow(name="p-signals")
async def signals(ctx: fn.WorkflowContext) -> list:
    got = [await ctx.wait_for_signal("note")]
    got.append(await ctx.wait_for_signal("note", type_hint=int))
    try:
        await ctx.wait_for_signal("never", timeout=0.05)
    except fn.SignalTimeout:
        got.append("timeout")
    return got


def test_signals_are_buffered_and_delivered_in_order(engine: Engine) -> None:
    h = fn.start_workflow(signals, workflow_id="sig-1")
    fn.signal_workflow("sig-1", "note", "call me")
    fn.signal_workflow("sig-1", "note", 7)
    assert h.result(timeout=10) == ["call me", 7, "timeout"]
    received = [
        e.payload["value"]
        for e in fn.get_run("sig-1").events
        if e.type is EventType.SIGNAL_RECEIVED
    ]
    assert received == ["call me", 7]


def test_engine_activity_says_what_each_run_waits_on(engine: Engine) -> None:
    handle = fn.start_workflow(approval, None, workflow_id="p-activity")
    _waiting("p-activity")
    [live] = [r for r in engine.activity().runs if r.workflow_id == "p-activity"]
    assert (live.kind, live.computing, live.doing) == (
        "p-approval",
        False,
        "waiting on promise 'approval'",
    )
    fn.resolve_promise("p-activity", "approval", Decision(approved=False))
    assert handle.result(timeout=10) == "approved=False"
    wait_until(lambda: not [r for r in engine.activity().runs if r.workflow_id == "p-activity"])


def test_the_store_is_reopened_just_before_a_timeout_is_due(store_path: Path) -> None:
    """An idle engine lets go of the file; a deadline that will write finds it open."""
    with temporary_engine(store=store_path, idle_release=0.05) as engine:
        handle = fn.start_workflow(approval, 1.0, workflow_id="p-warm")
        [promise] = _waiting("p-warm")
        assert promise.timeout_at is not None
        lease = engine.store.lease
        wait_until(lambda: not lease.is_open, message="the idle engine kept the file")
        opens = lease.opens
        wait_until(lambda: lease.opens > opens, timeout=5, message="never reopened")
        reopened = time.time()
        assert reopened < promise.timeout_at.timestamp(), "opened only when the timeout fired"
        assert handle.result(timeout=10) == "timed out"


def test_a_deadline_keeps_an_open_store_from_being_let_go_just_before_it(
    store_path: Path,
) -> None:
    """The file is open when the warm-up comes but its idle release would fall between the
    warm-up and the deadline: the warm-up puts the release off (no reopen at the deadline)."""
    idle = 0.5
    with temporary_engine(store=store_path, idle_release=idle) as engine:
        handle = fn.start_workflow(approval, 2.0, workflow_id="p-keep")
        [promise] = _waiting("p-keep")
        assert promise.timeout_at is not None
        lease = engine.store.lease
        # Use the store so that its idle release falls 40 ms before the deadline, inside
        # the 50 ms in which the deadline queue warms the store up.
        touch_at = promise.timeout_at.timestamp() - idle - 0.04
        wait_until(lambda: time.time() >= touch_at, timeout=5, interval=0.001)
        fn.list_runs()
        opens = lease.opens
        assert handle.result(timeout=10) == "timed out"
        assert lease.opens == opens, "the store was let go and reopened for the timeout"
