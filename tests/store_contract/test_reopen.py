"""Store contract: ReopenRun, the write of a retry (an ended run runnable again)."""

from __future__ import annotations

import json
import time

import pytest
from contract_helpers import StoreFactory, end, event, promise, start

from flovyn_nb.errors import InvalidInput, UnknownWorkflow
from flovyn_nb.model import RunStatus
from flovyn_nb.store import Change, EventRow, FlagCancel, ReopenRun, Store
from flovyn_nb.testing import wait_until

RETRYABLE = (RunStatus.FAILED, RunStatus.CANCELLED)


def test_a_failed_run_reopens_unowned_running_and_claimable(make_store: StoreFactory) -> None:
    store = make_store()
    run = start(store, "w-retry", owner="engine-a")
    store.commit([Change(intents=[FlagCancel(run.execution_id)])])
    old = promise(store, run, "old", timeout_at=time.time() - 1)
    kept = promise(store, run, "kept")
    end(store, run, RunStatus.FAILED)
    marker = EventRow(run.execution_id, 2, "WORKFLOW_RETRIED", json.dumps({"attempt": 2}), 1.0)
    [before] = store.commit(
        [
            Change(
                events=[marker],
                intents=[
                    ReopenRun(run.execution_id, RETRYABLE, time.time(), "new-hash", (old.id,))
                ],
            )
        ]
    )
    assert before.status is RunStatus.FAILED
    other = make_store()  # another process sees it reopened, and can claim it
    found = other.find_run("w-retry")
    assert found is not None
    assert (found.status, found.owner, found.cancel_requested, found.source_hash) == (
        RunStatus.RUNNING,
        None,
        False,
        "new-hash",
    )
    info = other.get_run("w-retry")
    assert info is not None and info.output is None and info.error is None
    assert [p.name for p in other.promises(workflow_id="w-retry")] == [kept.name]
    claimed = other.claim("engine-b", ["k"], lambda engine: False)
    assert [row.workflow_id for row, _ in claimed.runs] == ["w-retry"]
    assert [e[1] for e in claimed.runs[0][1]] == ["WORKFLOW_STARTED", "WORKFLOW_RETRIED"]


@pytest.mark.parametrize("status", [RunStatus.RUNNING, RunStatus.COMPLETED])
def test_a_run_not_failed_is_refused_and_nothing_changes(store: Store, status: RunStatus) -> None:
    run = start(store, f"w-{status.value}", owner="engine-a")
    if status is RunStatus.COMPLETED:
        end(store, run, status)
    marker = event(run.execution_id, 2, "WORKFLOW_RETRIED")
    with pytest.raises(InvalidInput, match=status.value.lower()):
        store.commit(
            [Change(events=[marker], intents=[ReopenRun(run.execution_id, RETRYABLE, 1.0)])]
        )
    assert len(store.load_histories([run.execution_id])[run.execution_id]) == 1
    found = store.find_run(run.workflow_id)
    assert found is not None and found.status is status


def test_an_unknown_run_is_refused(store: Store) -> None:
    with pytest.raises(UnknownWorkflow):
        store.commit([Change(intents=[ReopenRun("no-such-id", RETRYABLE, 1.0)])])


def test_a_reopened_run_rings_the_work_bell(make_store: StoreFactory) -> None:
    """A retry written by a process without the workflow (the CLI) wakes the engines at
    once: a reopened run waits for one, like a new unowned run."""
    one, other = make_store(), make_store()
    run = start(one, "w-ring", owner="engine-a")
    end(one, run, RunStatus.FAILED)
    work = other.work_bell.watcher()  # the setup never rings it: no run waits for an engine
    one.commit([Change(intents=[ReopenRun(run.execution_id, RETRYABLE, time.time())])])
    wait_until(work.rung_by_others, timeout=30, message="the work bell never rang")
