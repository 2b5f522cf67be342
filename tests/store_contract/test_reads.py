"""Store contract: histories, queries and the doorbell."""

from __future__ import annotations

import time

import pytest
from contract_helpers import StoreFactory, end, event, promise, start

from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunStatus
from flovyn_nb.store import Change, LogRow, RunUpdate, Store
from flovyn_nb.testing import wait_until


def test_histories_load_in_seq_order_for_many_runs_at_once(store: Store) -> None:
    one = start(store, "w-h1")
    two = start(store, "w-h2")
    # Written out of order, across commits and runs.
    store.commit([Change(events=[event(one.execution_id, 3), event(two.execution_id, 2)])])
    store.commit([Change(events=[event(one.execution_id, 2, "TIMER_STARTED")])])
    got = store.load_histories([one.execution_id, two.execution_id, "unknown"])
    assert [e[0] for e in got[one.execution_id]] == [1, 2, 3]
    assert got[one.execution_id][1][1:3] == ("TIMER_STARTED", {"seq": 2})
    assert [e[0] for e in got[two.execution_id]] == [1, 2]
    assert got["unknown"] == []
    assert isinstance(got[one.execution_id][0][3], float)


def test_get_run_by_workflow_or_execution_id(store: Store) -> None:
    run = start(store, "w-get")
    by_workflow = store.get_run("w-get")
    assert by_workflow is not None
    assert (by_workflow.execution_id, by_workflow.kind, by_workflow.input) == (
        run.execution_id,
        "k",
        {"n": 1},
    )
    assert [e.seq for e in by_workflow.events] == [1]
    by_execution = store.get_run(run.execution_id, with_events=False)
    assert by_execution is not None and by_execution.workflow_id == "w-get"
    assert by_execution.events == []
    assert store.get_run("nope") is None


def test_list_runs_filters_by_status_and_kind_newest_first(store: Store) -> None:
    base = time.time()
    runs = [start(store, f"w-list-{i}", kind="a" if i % 2 else "b", now=base + i) for i in range(5)]
    end(store, runs[0])
    store.commit([Change(run_update=RunUpdate(runs[1].execution_id, RunStatus.FAILED, base))])
    assert [r.workflow_id for r in store.list_runs()] == [f"w-list-{i}" for i in range(4, -1, -1)]
    assert [r.workflow_id for r in store.list_runs(statuses=["COMPLETED", "FAILED"])] == [
        "w-list-1",
        "w-list-0",
    ]
    assert [r.workflow_id for r in store.list_runs(kind="a")] == ["w-list-3", "w-list-1"]
    assert [r.workflow_id for r in store.list_runs(kind="b", statuses=["RUNNING"])] == [
        "w-list-4",
        "w-list-2",
    ]
    assert [r.workflow_id for r in store.list_runs(limit=2)] == ["w-list-4", "w-list-3"]
    assert all(r.events == [] for r in store.list_runs())


def test_promises_query_pending_ones_of_active_runs_by_default(store: Store) -> None:
    active = start(store, "w-p-active")
    ended = start(store, "w-p-ended")
    promise(store, active, "a1", timeout_at=time.time() + 60)
    promise(store, active, "a2")
    promise(store, ended, "e1")
    end(store, ended)
    assert [p.name for p in store.promises()] == ["a1", "a2"]
    [first] = store.promises(workflow_id="w-p-active")[:1]
    assert first.timeout_at is not None and first.execution_id == active.execution_id
    assert [p.name for p in store.promises(workflow_id="w-p-ended")] == []
    assert [p.name for p in store.promises(workflow_id="w-p-ended", pending_only=False)] == ["e1"]


def test_logs_in_order_and_since_a_time(store: Store) -> None:
    run = start(store, "w-logs")
    base = time.time()
    lines = [
        LogRow(run.execution_id, None if i % 2 else "task-1", base + i, "stdout", "INFO", f"l{i}")
        for i in range(4)
    ]
    store.commit([Change(logs=lines[:2]), Change(logs=lines[2:])])
    assert [e.message for e in store.logs(run.execution_id)] == ["l0", "l1", "l2", "l3"]
    assert [e.task_execution_id for e in store.logs(run.execution_id)][:2] == ["task-1", None]
    assert [e.message for e in store.logs(run.execution_id, since_ts=base + 1.5)] == ["l2", "l3"]


def test_sql_reads_the_tables_and_bad_sql_is_invalid_input(store: Store) -> None:
    pytest.importorskip("pandas")
    start(store, "w-sql")
    frame = store.sql("SELECT workflow_id FROM workflow_executions WHERE kind = ?", ["k"])
    assert list(frame["workflow_id"]) == ["w-sql"]
    with pytest.raises(InvalidInput, match="bad SQL"):
        store.sql("SELEC nothing")


def test_the_doorbell_rings_for_others_after_every_commit(make_store: StoreFactory) -> None:
    watching, writing = make_store(), make_store()
    start(watching, "w-bell")
    others = watching.doorbell.watcher()
    own = writing.doorbell.watcher()
    assert not others.rung_by_others()
    writing.commit([Change(intents=[])])  # even an empty commit is a commit
    wait_until(others.rung_by_others, timeout=5, message="the watcher never heard the commit")
    assert not own.rung_by_others()  # its own rings do not count
    assert not others.rung_by_others()  # one look per ring
    writing.request_cancel("w-bell")
    wait_until(others.rung_by_others, timeout=5, message="an inbox write did not ring")


def test_a_store_let_go_is_used_again_and_a_closed_one_refuses(store: Store) -> None:
    start(store, "w-hold")
    store.warm()
    store.release()
    assert store.find_run("w-hold") is not None  # reopened on demand
    store.close()
    with pytest.raises(Exception, match="closed"):
        store.find_run("w-hold")
