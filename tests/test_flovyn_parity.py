"""Flovyn SDK parity (issue 14, first part): the context's Flovyn spellings behave as in
Flovyn's SDK, signals keep their sending order, tasks refuse an input they do not take,
and ``RetryPolicy()`` has Flovyn's defaults."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.model import EventType
from flovyn_nb.store import open_store
from flovyn_nb.store.duckdb import schema
from flovyn_nb.testing import FakeClock, temporary_engine, wait_until


def _events(workflow_id: str, kind: EventType) -> list[dict[str, Any]]:
    return [e.payload for e in fn.get_run(workflow_id).events if e.type is kind]


# -- 1. state calls are awaited in async workflows ----------------------------------------


@fn.workflow(name="par-state")
async def async_state(ctx: fn.WorkflowContext) -> dict[str, Any]:
    await ctx.set("b", 1)
    await ctx.set("a", {"x": [1, 2]})
    await ctx.set("c", "gone soon")
    await ctx.clear("c")
    keys = ctx.state_keys()  # a plain list, as in Flovyn ...
    awaited = await ctx.state_keys()  # ... that may be awaited as well
    a = await ctx.get("a")
    missing = await ctx.get("c", "default")
    await ctx.clear_all()
    await ctx.promise("done")  # the test restarts the engine here: all above replays
    return {
        "keys": keys,
        "awaited": awaited,
        "a": a,
        "missing": missing,
        "after": await ctx.state_keys(),
        "b": await ctx.get("b"),
    }


@fn.workflow(name="par-state-sync")
def sync_state(ctx: fn.SyncWorkflowContext) -> dict[str, Any]:
    ctx.set("y", 2)
    ctx.set("x", 1)
    keys = ctx.state_keys()
    ctx.clear_all()
    return {"keys": keys, "after": ctx.state_keys(), "x": ctx.get("x", "none")}


EXPECTED_STATE = {
    "keys": ["a", "b"],
    "awaited": ["a", "b"],
    "a": {"x": [1, 2]},
    "missing": "default",
    "after": [],
    "b": None,
}


def _replayed(workflow_id: str, store_path: Path, clock: Any = None) -> Any:
    """Restart the engine on the store (a kernel restart): the run replays its history;
    then resolve its ``done`` promise and return its result."""
    before = fn.get_run(workflow_id).events
    fn.stop()
    with temporary_engine(store=store_path, clock=clock):
        fn.resolve_promise(workflow_id, "done", None)
        result = fn.get_handle(workflow_id).result(timeout=30)
        after = fn.get_run(workflow_id).events
    # Replay re-recorded nothing: the old events are unchanged, only the ending is new.
    assert after[: len(before)] == before
    assert {e.type for e in after[len(before) :]} <= {
        EventType.PROMISE_RESOLVED,
        EventType.WORKFLOW_COMPLETED,
    }
    return result


def test_state_calls_are_coroutines_in_async_workflows_and_replay(store_path: Path) -> None:
    fn.start(store_path)
    fn.start_workflow(async_state, workflow_id="par-state-1")
    wait_until(lambda: fn.pending_promises("par-state-1"))
    # clear_all records one STATE_CLEARED per key it cleared, in key order.
    assert [p["key"] for p in _events("par-state-1", EventType.STATE_CLEARED)] == ["c", "a", "b"]
    assert [p["key"] for p in _events("par-state-1", EventType.STATE_SET)] == ["b", "a", "c"]
    assert _replayed("par-state-1", store_path) == EXPECTED_STATE


def test_state_calls_stay_plain_in_sync_workflows(engine: Runtime) -> None:
    h = fn.start_workflow(sync_state, workflow_id="par-state-sync-1")
    assert h.result(timeout=30) == {"keys": ["x", "y"], "after": [], "x": "none"}
    assert [p["key"] for p in _events("par-state-sync-1", EventType.STATE_CLEARED)] == ["x", "y"]


# -- 2. handles: `await h` and `await h.result()` ----------------------------------------


@fn.task(name="par-double")
async def double(x: int) -> int:
    return 2 * x


@fn.workflow(name="par-handles")
async def handles(ctx: fn.WorkflowContext) -> list[int]:
    first = ctx.schedule_async(double, 1)
    second = ctx.schedule_async(double, 2)
    return [await first, await second.result()]


@fn.workflow(name="par-handles-sync")
def handles_sync(ctx: fn.SyncWorkflowContext) -> list[int]:
    h = ctx.schedule_async(double, 3)
    return [h.result()]


def test_a_handle_is_awaited_directly_or_through_result(engine: Runtime) -> None:
    assert fn.start_workflow(handles, workflow_id="par-h-1").result(timeout=30) == [2, 4]
    assert fn.start_workflow(handles_sync, workflow_id="par-h-2").result(timeout=30) == [6]


# -- 3. time in milliseconds; buffered signals: has / count / drain ------------------------


@fn.workflow(name="par-millis")
async def millis(ctx: fn.WorkflowContext) -> list[Any]:
    return [ctx.current_time_millis(), ctx.current_time().isoformat()]


def test_current_time_millis_is_the_recorded_time(fake_engine: Runtime) -> None:
    ms, iso = fn.start_workflow(millis, workflow_id="par-ms").result(timeout=30)
    assert isinstance(ms, int)
    recorded = [
        p["result"]
        for p in _events("par-ms", EventType.OPERATION_COMPLETED)
        if p["operationName"] == "current_time"
    ]
    assert len(recorded) == 2
    assert ms == int(datetime.fromisoformat(recorded[0]).timestamp() * 1000)
    assert iso == recorded[1]


@fn.workflow(name="par-drain")
async def drain(ctx: fn.WorkflowContext) -> dict[str, Any]:
    await ctx.promise("go")
    first = await ctx.wait_for_signal("note", type_hint=int)
    # The inbox scan that delivered `first` buffered the others, in sending order.
    before = [ctx.has_signal("note"), ctx.pending_signal_count("note"), ctx.has_signal("x")]
    drained = ctx.drain_signals("note", type_hint=int)
    after = [ctx.has_signal("note"), ctx.pending_signal_count("note"), ctx.drain_signals("note")]
    await ctx.promise("done")  # the test restarts the engine here: all above replays
    return {"first": first, "before": before, "drained": drained, "after": after}


EXPECTED_DRAIN = {
    "first": 0,
    "before": [True, 4, False],
    "drained": [1, 2, 3, 4],
    "after": [False, 0, []],
}


def test_buffered_signals_are_counted_drained_in_order_and_replayed(
    store_path: Path, clock: FakeClock
) -> None:
    # Under a FakeClock all five signals carry the same timestamp (the ordering bug).
    fn.start(store_path, clock=clock)
    fn.start_workflow(drain, workflow_id="par-drain-1")
    wait_until(lambda: fn.pending_promises("par-drain-1"))
    for i in range(5):
        fn.signal_workflow("par-drain-1", "note", i)
    fn.resolve_promise("par-drain-1", "go", True)
    wait_until(lambda: [p.name for p in fn.pending_promises("par-drain-1")] == ["done"])
    assert _replayed("par-drain-1", store_path, clock) == EXPECTED_DRAIN


# -- 4. signal order survives the schema migration ---------------------------------------


def test_a_version_2_store_gets_signal_sequences_in_its_old_order(store_path: Path) -> None:
    con = duckdb.connect(str(store_path))
    for version in (1, 2):
        for statement in schema.MIGRATIONS[version]:
            con.execute(statement)
        con.execute(f"INSERT INTO schema_version VALUES ('flovyn_nb', {version}, now()::TIMESTAMP)")
    for i, ts in enumerate(["2026-01-01 00:00:02", "2026-01-01 00:00:01", "2026-01-01 00:00:03"]):
        con.execute(
            "INSERT INTO signals (id, execution_id, name, value, created_at) "
            f"VALUES ('s{i}', 'e', 'go', '{i}', TIMESTAMP '{ts}')"
        )
    con.close()
    store = open_store(store_path)
    try:
        assert [s.value for s in store.undelivered(["e"]).signals] == [1, 0, 2]
    finally:
        store.close()
    con = duckdb.connect(str(store_path), read_only=True)
    try:
        assert con.execute("SELECT max(version) FROM schema_version").fetchone() == (
            schema.CURRENT_VERSION,
        )
        assert con.execute("SELECT id, seq FROM signals ORDER BY seq").fetchall() == [
            ("s1", 1),
            ("s0", 2),
            ("s2", 3),
        ]
    finally:
        con.close()


# -- 5. a task that takes no input refuses one --------------------------------------------


@fn.task(name="par-no-input")
def no_input() -> str:
    return "ran"


@fn.workflow(name="par-given-input")
async def given_input(ctx: fn.WorkflowContext) -> str:
    try:
        await ctx.schedule(no_input, {"unexpected": 1})
    except fn.InvalidInput as exc:
        return str(exc)
    return "no error"


def test_a_task_without_input_refuses_one_and_records_nothing(engine: Runtime) -> None:
    message = fn.start_workflow(given_input, workflow_id="par-input-1").result(timeout=30)
    assert "'par-no-input' takes no input" in message
    assert "without an input" in message  # and says what to do
    events = fn.get_run("par-input-1").events
    assert not [e for e in events if e.type.value.startswith("TASK_")]


# -- 6. RetryPolicy() has Flovyn's defaults ----------------------------------------------


def test_retry_policy_defaults_are_flovyns() -> None:
    policy = fn.RetryPolicy()
    assert policy.max_attempts == 3
    assert policy.initial_interval == timedelta(seconds=1)
    assert policy.max_interval == timedelta(minutes=1)
    assert policy.backoff_coefficient == 2.0
    # A task given no policy still runs once: asked for, retries are explicit.
    assert no_input.retry_policy.max_attempts == 1
    with pytest.raises(fn.InvalidInput, match="max_attempts"):
        fn.RetryPolicy(max_attempts=0)
