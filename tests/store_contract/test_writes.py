"""Store contract: the engine's writes (commits, runs, ownership, engines)."""

from __future__ import annotations

import time

import pytest
from contract_helpers import StoreFactory, end, event, new_run, promise, row, start

from flovyn_nb.errors import DuplicateWorkflowId, StoreError, UnknownWorkflow
from flovyn_nb.model import PromiseStatus, RunStatus
from flovyn_nb.store import (
    Change,
    Claim,
    Claimed,
    EngineRow,
    FlagCancel,
    Heartbeat,
    LogRow,
    ReleaseRun,
    RequestCancel,
    RunUpdate,
    Store,
)


def test_a_commit_applies_every_change_and_returns_each_result(store: Store) -> None:
    run = new_run("w-1")
    log = LogRow(run.execution_id, None, time.time(), "stdout", "INFO", "hello")
    results = store.commit(
        [
            Change(new_run=run, events=[event(run.execution_id, 1)]),
            Change(events=[event(run.execution_id, 2, "TIMER_STARTED")], logs=[log]),
            Change(intents=[FlagCancel(run.execution_id)]),
        ]
    )
    assert results == [None, None, None]
    assert [e[:2] for e in store.load_histories([run.execution_id])[run.execution_id]] == [
        (1, "WORKFLOW_STARTED"),
        (2, "TIMER_STARTED"),
    ]
    assert [entry.message for entry in store.logs(run.execution_id)] == ["hello"]
    assert store.undelivered([run.execution_id]).cancels == [run.execution_id]
    pending = promise(store, run, "p")  # a new promise's row is its change's result
    assert (pending.name, pending.status) == ("p", PromiseStatus.PENDING)


def test_a_commit_that_fails_changes_nothing(store: Store) -> None:
    run = new_run("w-atomic")
    with pytest.raises(StoreError):  # the second event repeats seq 1
        store.commit(
            [
                Change(new_run=run, events=[event(run.execution_id, 1)]),
                Change(events=[event(run.execution_id, 1)]),
            ]
        )
    assert store.find_run("w-atomic") is None
    assert store.load_histories([run.execution_id]) == {run.execution_id: []}


def test_an_intent_refused_by_its_rules_rolls_the_whole_commit_back(store: Store) -> None:
    run = new_run("w-rules")
    with pytest.raises(UnknownWorkflow):
        store.commit(
            [
                Change(new_run=run, events=[event(run.execution_id, 1)]),
                Change(intents=[RequestCancel("no-such-run")]),
            ]
        )
    assert store.find_run("w-rules") is None


def test_a_taken_workflow_id_is_a_typed_error_and_inserts_nothing(store: Store) -> None:
    first = start(store, "w-dup")
    second = new_run("w-dup")
    with pytest.raises(DuplicateWorkflowId) as caught:
        store.commit([Change(new_run=second)])
    assert caught.value.workflow_id == "w-dup"
    assert row(store, "w-dup").id == first.execution_id
    # Among other starts in one commit: none of them is inserted.
    other = new_run("w-other")
    with pytest.raises(DuplicateWorkflowId):
        store.commit([Change(new_run=other), Change(new_run=new_run("w-dup"))])
    assert store.find_run("w-other") is None


def test_the_same_workflow_id_twice_in_one_commit_is_a_duplicate(store: Store) -> None:
    with pytest.raises(DuplicateWorkflowId):
        store.commit([Change(new_run=new_run("w-twice")), Change(new_run=new_run("w-twice"))])
    assert store.find_run("w-twice") is None


def test_run_updates_move_the_status_and_an_end_clears_the_owner(store: Store) -> None:
    run = start(store, "w-rows", owner="engine-1")
    store.commit([Change(statuses=[RunUpdate(run.execution_id, RunStatus.WAITING, time.time())])])
    assert store.run_status(run.execution_id) == (RunStatus.WAITING, None, None)
    assert row(store, "w-rows").owner == "engine-1"
    end(store, run)
    assert store.run_status(run.execution_id) == (RunStatus.COMPLETED, 1, None)
    assert row(store, "w-rows").owner is None
    assert store.run_status("no-such-execution") is None


def _engine(store: Store, engine_id: str) -> None:
    store.register_engine(engine_id, pid=12345, host="host-a", proc_start="1", now=time.time())


def test_engines_register_beat_and_stop(store: Store) -> None:
    _engine(store, "e-1")
    _engine(store, "e-2")
    [one] = [e for e in store.live_engines() if e.id == "e-1"]
    assert (one.pid, one.host, one.proc_start) == (12345, "host-a", "1")
    later = one.heartbeat_at + 42.0
    store.commit([Change(intents=[Heartbeat("e-1", later)])])
    [one] = [e for e in store.live_engines() if e.id == "e-1"]
    assert one.heartbeat_at == pytest.approx(later, abs=1e-3)
    start(store, "w-owned", owner="e-2")
    store.stop_engine("e-2")
    assert {e.id for e in store.live_engines()} == {"e-1"}
    assert row(store, "w-owned").owner is None  # stopping hands its runs back


def test_a_claim_takes_only_runs_of_dead_or_no_owners(make_store: StoreFactory) -> None:
    store = make_store()
    _engine(store, "alive")
    _engine(store, "dead")
    _engine(store, "me")
    kept = start(store, "w-kept", owner="alive")
    orphan = start(store, "w-orphan", owner="dead")
    free = start(store, "w-free", owner=None)
    other_kind = start(store, "w-other-kind", kind="other", owner=None)
    ended = start(store, "w-ended", owner=None)
    end(store, ended)
    store.commit([Change(events=[event(orphan.execution_id, 2, "TIMER_STARTED")])])
    asked: list[str] = []

    def alive(engine: EngineRow) -> bool:
        asked.append(engine.id)
        return engine.id == "alive"

    claimed = store.claim("me", ["k"], alive)
    assert isinstance(claimed, Claimed)
    assert sorted(r.workflow_id for r, _ in claimed.runs) == ["w-free", "w-orphan"]
    histories = {r.workflow_id: [e[:2] for e in events] for r, events in claimed.runs}
    assert histories["w-orphan"] == [(1, "WORKFLOW_STARTED"), (2, "TIMER_STARTED")]
    assert {e.id for e in claimed.engines} == {"alive", "me"}
    assert "me" not in asked  # the claimer counts as alive without asking
    assert {e.id for e in store.live_engines()} == {"alive", "me"}  # the dead one is stopped
    assert row(store, "w-kept").owner == "alive"
    assert row(store, "w-orphan").owner == "me"
    assert row(store, "w-free").owner == "me"
    assert row(store, "w-other-kind").owner is None
    assert row(store, "w-ended").owner is None
    # A second engine finds nothing left: "me" lives.
    again = make_store().claim("late", ["k", "other"], lambda e: e.id != "dead")
    assert [r.workflow_id for r, _ in again.runs] == [other_kind.workflow_id]
    assert kept and free


def test_a_claim_takes_the_oldest_runs_first_up_to_its_limit(store: Store) -> None:
    base = time.time()
    for i in range(3):
        start(store, f"w-old-{i}", now=base + i)
    claimed = store.commit([Change(intents=[Claim("me", ["k"], lambda e: False, limit=2)])])[0]
    assert [r.workflow_id for r, _ in claimed.runs] == ["w-old-0", "w-old-1"]


def test_releasing_hands_runs_back_only_from_their_owner(store: Store) -> None:
    mine = start(store, "w-mine", owner="me")
    theirs = start(store, "w-theirs", owner="them")
    store.commit(
        [
            Change(
                intents=[ReleaseRun(mine.execution_id, "me"), ReleaseRun(theirs.execution_id, "me")]
            )
        ]
    )
    assert row(store, "w-mine").owner is None
    assert row(store, "w-theirs").owner == "them"
    store.release_runs("them")
    assert row(store, "w-theirs").owner is None
