"""Store contract: the task queue (tasks scheduled on a queue another engine serves).

A run's owner queues a task with its TASK_SCHEDULED event (one commit), a claimer takes
it (never two at once), says how far it got, and writes its outcome; the owner reads the
row. A claimer that died is replaced; a cancelled run's tasks are closed and never
claimed; queueing rings the work bell.
"""

from __future__ import annotations

import json
import time

from contract_helpers import StoreFactory, event, start

from flovyn_nb.store import Change, EngineRow, RequestCancel, Store
from flovyn_nb.store import taskqueue as tq
from flovyn_nb.testing import wait_until


def queue_task(
    store: Store, run_id: str, task_id: str, *, queue: str = "gpu", seq: int = 2
) -> None:
    store.commit(
        [
            Change(
                events=[event(run_id, seq, "TASK_SCHEDULED")],
                intents=[
                    tq.QueueTask(
                        task_execution_id=task_id,
                        execution_id=run_id,
                        workflow_id="w",
                        kind="t",
                        queue=queue,
                        input_json=json.dumps({"n": 1}),
                        max_attempts=3,
                        timeout_seconds=2.5,
                        retry_json=json.dumps({"maxAttempts": 3}),
                        now=time.time() + seq,
                    )
                ],
            )
        ]
    )


def claim(store: Store, engine: str, *, queues: tuple[str, ...] = ("gpu",), limit: int = 10,
          dead: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    def alive(row: EngineRow) -> bool:
        return row.id not in dead

    rows = store.commit(
        [Change(intents=[tq.ClaimTasks(engine, ["t"], list(queues), alive, limit, time.time())])]
    )[0]
    return [row.id for row in rows]


def register(store: Store, *engines: str) -> None:
    for engine in engines:
        store.register_engine(engine, pid=1, host="h", proc_start=None, now=time.time())


def test_a_queued_task_is_claimed_once_by_an_engine_serving_its_queue(
    make_store: StoreFactory,
) -> None:
    one, other = make_store(), make_store()
    register(one, "e1", "e2")
    run = start(one, "w")
    queue_task(one, run.execution_id, "t1")
    queue_task(one, run.execution_id, "t2", queue="cpu", seq=3)
    [row] = one.queued_tasks(["t1"])
    assert (row.status, row.owner, row.attempt, row.queue) == ("QUEUED", None, 0, "gpu")
    assert (row.input, row.max_attempts, row.timeout_seconds) == ({"n": 1}, 3, 2.5)
    assert row.retry == {"maxAttempts": 3}
    assert claim(other, "e2", queues=("nothing",)) == []
    assert claim(other, "e2") == ["t1"]
    assert claim(one, "e1") == []  # held by a live engine
    [row] = one.queued_tasks(["t1"])
    assert (row.status, row.owner) == ("RUNNING", "e2")
    assert [r.id for r in one.queued_tasks(["t2", "t1", "unknown"])] == ["t1", "t2"]


def test_progress_and_outcome_are_taken_from_the_holder_only(store: Store) -> None:
    register(store, "e1", "e2")
    run = start(store, "w")
    queue_task(store, run.execution_id, "t1")
    assert claim(store, "e1") == ["t1"]

    def write(intent: tq.TaskIntent) -> object:
        return store.commit([Change(intents=[intent])])[0]

    assert write(tq.TaskProgress("t1", "e1", 1, None, time.time())) is True
    assert write(tq.TaskProgress("t1", "e2", 1, None, time.time())) is False
    resume = time.time() + 60
    assert write(tq.TaskProgress("t1", "e1", 1, resume, time.time())) is True
    [row] = store.queued_tasks(["t1"])
    assert row.attempt == 1 and row.resume_at is not None and abs(row.resume_at - resume) < 0.01
    finish = tq.FinishTask("t1", "e2", tq.COMPLETED, 2, json.dumps({"v": 2}), None, False, 0.0)
    assert write(finish) is False
    error = json.dumps({"type": "ValueError", "message": "no", "traceback": ""})
    assert write(tq.FinishTask("t1", "e1", tq.FAILED, 2, None, error, True, time.time())) is True
    [row] = store.queued_tasks(["t1"])
    assert (row.status, row.attempt, row.output, row.timed_out) == ("FAILED", 2, None, True)
    assert row.error == {"type": "ValueError", "message": "no", "traceback": ""}
    assert write(tq.TaskProgress("t1", "e1", 3, None, time.time())) is False  # it ended


def test_a_task_whose_claimer_died_is_claimed_again_from_its_next_attempt(store: Store) -> None:
    register(store, "e1", "e2")
    run = start(store, "w")
    queue_task(store, run.execution_id, "t1")
    assert claim(store, "e1") == ["t1"]
    store.commit([Change(intents=[tq.TaskProgress("t1", "e1", 1, None, time.time())])])
    assert claim(store, "e2") == []
    assert claim(store, "e2", dead=("e1",)) == ["t1"]
    [row] = store.queued_tasks(["t1"])
    assert (row.owner, row.attempt) == ("e2", 1)


def test_cancelled_tasks_are_closed_and_a_cancelled_run_s_tasks_are_never_claimed(
    store: Store,
) -> None:
    register(store, "e1")
    run = start(store, "w")
    queue_task(store, run.execution_id, "t1")
    queue_task(store, run.execution_id, "t2", seq=3)
    store.commit([Change(intents=[tq.CancelTasks(("t1",), time.time())])])
    assert [r.status for r in store.queued_tasks(["t1", "t2"])] == ["CANCELLED", "QUEUED"]
    store.commit([Change(intents=[RequestCancel("w")])])
    assert claim(store, "e1") == []


def test_queueing_a_task_rings_the_work_bell(make_store: StoreFactory) -> None:
    one, other = make_store(), make_store()
    run = start(one, "w")
    door, work = other.doorbell.watcher(), other.work_bell.watcher()
    queue_task(one, run.execution_id, "t1")
    wait_until(door.rung_by_others, timeout=30, message="the doorbell never rang")
    assert work.rung_by_others()
