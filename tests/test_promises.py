"""Promises (human-in-the-loop waits) and signals."""

from __future__ import annotations

import collections
import random
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pydantic
import pytest
from engine_internals import running_engine

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.engine.engine import Engine
from flovyn_nb.model import EventType, PromiseStatus, RunStatus
from flovyn_nb.store import SettlePromise
from flovyn_nb.store.duckdb import DuckDBStore
from flovyn_nb.testing import FakeClock, temporary_engine, wait_until


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every engine test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


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
    assert h.result(timeout=30) == "approved=True ship it"
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
    assert h.result(timeout=30) == "approved=False"


def test_resolving_twice_keeps_the_first_value(engine: Engine) -> None:
    h = fn.start_workflow(approval, None, workflow_id="p-twice")
    _waiting("p-twice")
    fn.resolve_promise("p-twice", "approval", {"approved": True, "comment": "first"})
    with pytest.raises(fn.PromiseAlreadyResolved, match="already resolved"):
        fn.resolve_promise("p-twice", "approval", {"approved": False, "comment": "second"})
    assert h.result(timeout=30) == "approved=True first"
    values = fn.sql("select value from promises")["value"].tolist()
    assert values == ['{"approved":true,"comment":"first"}']


def test_reject_raises_in_the_workflow(engine: Engine) -> None:
    h = fn.start_workflow(approval, None, workflow_id="p-rej")
    _waiting("p-rej")
    fn.reject_promise("p-rej", "approval", "too expensive")
    assert h.result(timeout=30) == "rejected: too expensive"
    assert fn.get_run("p-rej").events[-2].type is EventType.PROMISE_REJECTED


@fn.task(name="p-slow-step")
def slow_step(gate: str) -> None:
    wait_until(lambda: gate in resolved_early, timeout=30)


resolved_early: set[str] = set()


@fn.workflow(name="p-late")
async def late_promise(ctx: fn.WorkflowContext) -> int:
    await ctx.schedule(slow_step, "late-1")
    return await ctx.promise("number", type_hint=int)


def test_resolve_before_the_workflow_reaches_the_promise(engine: Engine) -> None:
    h = fn.start_workflow(late_promise, workflow_id="late-1")
    fn.resolve_promise("late-1", "number", 41)
    resolved_early.add("late-1")
    assert h.result(timeout=30) == 41
    types = [e.type for e in fn.get_run("late-1").events]
    assert types.index(EventType.PROMISE_CREATED) < types.index(EventType.PROMISE_RESOLVED)


def test_timeout_fires_and_never_before_its_deadline(engine: Engine) -> None:
    """How late it fires is a figure of ``make bench`` (timer_lateness), not a test."""
    h = fn.start_workflow(approval, 0.3, workflow_id="p-timeout")
    assert h.result(timeout=30) == "timed out"
    events = fn.get_run("p-timeout").events
    created = next(e for e in events if e.type is EventType.PROMISE_CREATED)
    timed_out = next(e for e in events if e.type is EventType.PROMISE_TIMEOUT)
    assert timed_out.payload == {
        "promiseId": created.payload["promiseId"],
        "promiseName": "approval",
    }
    deadline = datetime.fromisoformat(created.payload["timeoutAt"]).timestamp()
    lateness = timed_out.ts.timestamp() - deadline
    assert lateness >= 0, f"fired {-lateness * 1000:.1f} ms before its deadline"
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
        assert h.result(timeout=30) == "timed out"


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
    assert h.result(timeout=30) == ["call me", 7, "timeout"]
    received = [
        e.payload["value"]
        for e in fn.get_run("sig-1").events
        if e.type is EventType.SIGNAL_RECEIVED
    ]
    assert received == ["call me", 7]


def test_engine_activity_says_what_each_run_waits_on(engine: Engine) -> None:
    handle = fn.start_workflow(approval, None, workflow_id="p-activity")
    _waiting("p-activity")
    [live] = [r for r in client.activity().runs if r.workflow_id == "p-activity"]
    assert (live.kind, live.computing, live.doing) == (
        "p-approval",
        False,
        "waiting on promise 'approval'",
    )
    fn.resolve_promise("p-activity", "approval", Decision(approved=False))
    assert handle.result(timeout=30) == "approved=False"
    wait_until(lambda: not [r for r in client.activity().runs if r.workflow_id == "p-activity"])


@pytest.mark.duckdb_only
def test_the_store_is_reopened_just_before_a_timeout_is_due(store_path: Path) -> None:
    """An idle engine lets go of the file; a deadline that will write has it reopened
    ahead of time. Asserted as an order, not a speed: the engine asks for the file (its
    deadline queue's warm-up) before it decides the timeout, and the file is reopened."""
    with temporary_engine(store=store_path, idle_release=0.05):
        engine = running_engine()
        warmed: list[float] = []
        real_warm = engine.deadlines._on_warm
        assert real_warm is not None

        def warm() -> None:  # called on the engine loop, like the timeout after it
            warmed.append(time.time())
            real_warm()

        engine.deadlines._on_warm = warm
        handle = fn.start_workflow(approval, 1.0, workflow_id="p-warm")
        [promise] = _waiting("p-warm")
        assert promise.timeout_at is not None
        lease = running_engine().store.lease
        wait_until(lambda: not lease.is_open, message="the idle engine kept the file")
        opens = lease.opens
        assert handle.result(timeout=30) == "timed out"
        assert lease.opens > opens, "never reopened"
        timed_out = next(
            e for e in fn.get_run("p-warm").events if e.type is EventType.PROMISE_TIMEOUT
        )
        assert warmed, "the deadline came without a warm-up"
        assert warmed[0] <= timed_out.ts.timestamp(), "warmed up only after the timeout"


@pytest.mark.duckdb_only
def test_a_deadline_keeps_an_open_store_from_being_let_go_just_before_it(
    store_path: Path,
) -> None:
    """The file is open when the warm-up comes but its idle release would fall between the
    warm-up and the deadline: the warm-up puts the release off (no reopen at the deadline)."""
    idle = 0.5
    with temporary_engine(store=store_path, idle_release=idle):
        handle = fn.start_workflow(approval, 2.0, workflow_id="p-keep")
        [promise] = _waiting("p-keep")
        assert promise.timeout_at is not None
        lease = running_engine().store.lease
        # Use the store so that its idle release falls 40 ms before the deadline, inside
        # the 50 ms in which the deadline queue warms the store up. The file is opened a
        # little before (opening takes ~100 ms, and the release counts from the end of a
        # use), so that the timed use itself is short.
        touch_at = promise.timeout_at.timestamp() - idle - 0.04
        wait_until(lambda: time.time() >= touch_at - 0.2, timeout=30, interval=0.001)
        fn.list_runs()
        wait_until(lambda: time.time() >= touch_at, timeout=30, interval=0.001)
        fn.list_runs()
        opens = lease.opens
        assert handle.result(timeout=30) == "timed out"
        assert lease.opens == opens, "the store was let go and reopened for the timeout"


# -- timeouts decided in memory ------------------------------------------------------------
#
# A resolve at or after a promise's deadline fails in the store, so its owner decides the
# timeout without a store round trip whenever no resolve can have committed unseen before
# the deadline (see Engine.promise_timed_out); otherwise the store settles it.


def _count_store_timeouts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count timeouts settled by the store's round trip (the slow path)."""
    from flovyn_nb.store.duckdb import ops

    calls: list[int] = []
    original = ops.time_out_promises

    def counting(con: Any, promise_ids: Any) -> Any:
        calls.append(len(promise_ids))
        return original(con, promise_ids)

    monkeypatch.setattr(ops, "time_out_promises", counting)
    return calls


def _promise_row(workflow_id: str) -> tuple[Any, ...]:
    [row] = fn.sql(
        "SELECT p.status, p.resolved_by, p.delivered, p.resolved_at = p.timeout_at "
        "FROM promises p JOIN workflow_executions w ON w.id = p.execution_id "
        "WHERE w.workflow_id = ?",
        [workflow_id],
    ).itertuples(index=False)
    return tuple(row)


def test_timeouts_are_decided_without_asking_the_store_and_recorded_with_their_event(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_timeouts = _count_store_timeouts(monkeypatch)
    # The file stays open all along: nobody else can have committed.
    with temporary_engine(store=store_path, idle_release=60.0):
        handles = [fn.start_workflow(approval, 0.5, workflow_id=f"mem-{i}") for i in range(30)]
        assert [h.result(timeout=30) for h in handles] == ["timed out"] * 30
        assert store_timeouts == []
        for i in range(30):
            assert _promise_row(f"mem-{i}") == ("TIMED_OUT", "timeout", True, True)
            types = [e.type for e in fn.get_run(f"mem-{i}").events]
            assert types.count(EventType.PROMISE_TIMEOUT) == 1


@pytest.mark.duckdb_only
def test_a_resolve_committed_elsewhere_before_the_deadline_wins_over_the_timeout(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process resolved the promise while this one had let go of the file, and the
    deadline comes before the doorbell was looked at: the store decides, the value wins."""
    store_timeouts = _count_store_timeouts(monkeypatch)
    clock = FakeClock()  # deadlines fire only when the test moves time
    # The doorbell is not watched on its own here (the test looks at it when it wants).
    with temporary_engine(store=store_path, clock=clock, poll_interval=600.0):
        handle = fn.start_workflow(approval, 60.0, workflow_id="p-race")
        _waiting("p-race")
        running_engine().store.release()
        elsewhere = DuckDBStore(store_path, create=False)  # its own lease and doorbell count
        try:
            elsewhere.settle_promise(
                SettlePromise(
                    workflow_id="p-race",
                    name="approval",
                    status=PromiseStatus.RESOLVED,
                    value={"approved": True, "comment": "just in time"},
                    reason=None,
                    resolved_by="elsewhere",
                    now=clock.now,  # before the deadline
                    validated=False,
                )
            )
        finally:
            elsewhere.close()
        running_engine().store.warm()  # this process holds the file again (a new tenure)
        clock.advance(61)
        assert handle.result(timeout=30) == "approved=True just in time"
        assert store_timeouts == [1]
        assert _promise_row("p-race")[:2] == ("RESOLVED", "elsewhere")


@pytest.mark.duckdb_only
def test_a_resolve_after_the_deadline_fails_though_no_engine_wrote_the_timeout(
    store_path: Path,
) -> None:
    with temporary_engine(store=store_path):
        fn.start_workflow(approval, 1.0, workflow_id="p-late")
        [promise] = _waiting("p-late")
    assert promise.timeout_at is not None
    deadline = promise.timeout_at.timestamp()
    wait_until(lambda: time.time() > deadline, timeout=30, message="deadline never passed")
    store = DuckDBStore(store_path, create=False)
    try:
        with pytest.raises(fn.PromiseAlreadyResolved, match="'approval' of run 'p-late' timed out"):
            fn.resolve_promise("p-late", "approval", {"approved": True}, store=store_path)
        pending = store.read(lambda con: con.execute("SELECT status FROM promises").fetchall())
    finally:
        store.close()
    assert pending == [("PENDING",)]  # the refusal changed nothing
    with temporary_engine(store=store_path):  # the run resumes; its deadline has passed
        assert fn.get_handle("p-late").result(timeout=30) == "timed out"
        assert _promise_row("p-late") == ("TIMED_OUT", "timeout", True, True)


def test_resolves_racing_the_deadline_from_this_process_agree_with_the_workflow(
    engine: Engine,
) -> None:
    """Resolves sent around each deadline (some just before, some just after): the caller,
    the workflow and the store tell the same story for every promise. Which way a racing
    resolve goes depends on the machine's speed, so two anchors make sure both stories are
    told whatever the load: one resolved at once with its deadline minutes away, one
    resolved 0.3 s after its deadline."""
    timeouts = {f"race-{i}": 3.0 + 0.03 * i for i in range(40)}
    timeouts.update({"race-early": 300.0, "race-late": 3.0})
    handles = {wid: fn.start_workflow(approval, t, workflow_id=wid) for wid, t in timeouts.items()}

    def recorded_deadlines() -> dict[str, float] | None:
        # From the histories, not from the pending promises: on a loaded machine some
        # deadlines may pass (and their promises time out) before the last run waits.
        found = {}
        for workflow_id in handles:
            events = fn.get_run(workflow_id).events
            created = [e for e in events if e.type is EventType.PROMISE_CREATED]
            if not created:
                return None
            timeout_at = datetime.fromisoformat(created[0].payload["timeoutAt"])
            found[workflow_id] = timeout_at.timestamp()
        return found

    deadlines = wait_until(
        recorded_deadlines, timeout=60, interval=0.05, message="not all runs wait"
    )
    rng = random.Random(7)
    plan = sorted(
        [(deadlines[w] + rng.uniform(-0.006, 0.004), w) for w in handles if w[5:].isdigit()]
        + [(time.time(), "race-early"), (deadlines["race-late"] + 0.3, "race-late")]
    )
    accepted: dict[str, bool] = {}
    for at, workflow_id in plan:
        wait_until(lambda at=at: time.time() >= at, timeout=60, interval=0.0005)
        try:
            fn.resolve_promise(workflow_id, "approval", {"approved": True})
            accepted[workflow_id] = True
        except fn.PromiseAlreadyResolved:
            accepted[workflow_id] = False
    for workflow_id, handle in handles.items():
        result = handle.result(timeout=60)
        assert result == ("approved=True" if accepted[workflow_id] else "timed out"), workflow_id
    for workflow_id in handles:
        status = _promise_row(workflow_id)[0]
        assert status == ("RESOLVED" if accepted[workflow_id] else "TIMED_OUT"), workflow_id
    assert accepted["race-early"] is True and accepted["race-late"] is False, accepted
    outcomes = collections.Counter(v for w, v in accepted.items() if w[5:].isdigit())
    print(f"resolves accepted / refused around the deadline: {outcomes[True]} / {outcomes[False]}")
