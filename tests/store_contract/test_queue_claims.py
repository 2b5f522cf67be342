"""Store contract: queues (claims by queue, concurrency and rate limits, the work bell)."""

from __future__ import annotations

import time

from contract_helpers import StoreFactory, end, event, new_run

from flovyn_nb.model import RunStatus
from flovyn_nb.store import Change, NewRun, Store
from flovyn_nb.store.catalog import QueueRow
from flovyn_nb.testing import wait_until


def enqueue(store: Store, workflow_id: str, queue: str, *, now: float | None = None) -> NewRun:
    """An unowned run waiting in ``queue`` (as a process without an engine starts it)."""
    run = new_run(workflow_id, now=now)
    run = NewRun(**{**{f: getattr(run, f) for f in run.__slots__}, "queue": queue})
    store.commit([Change(new_run=run, events=[event(run.execution_id, 1)])])
    return run


def claim(store: Store, engine: str, queues: list[str], **options: object) -> list[str]:
    claimed = store.claim(engine, ["k"], lambda e: True, queues=queues, **options)  # type: ignore[arg-type]
    return [row.workflow_id for row, _ in claimed.runs]


def register(store: Store, *engines: str) -> None:
    for engine in engines:
        store.register_engine(engine, pid=1, host="h", proc_start=None, now=time.time())


def test_an_engine_claims_only_the_queues_it_serves(store: Store) -> None:
    register(store, "e1")
    now = time.time()
    enqueue(store, "a", "default", now=now)
    enqueue(store, "b", "q", now=now + 1)
    enqueue(store, "c", "other", now=now + 2)
    assert claim(store, "e1", ["q"]) == ["b"]
    assert claim(store, "e1", ["default", "other"]) == ["a", "c"]
    found = store.find_run("b")
    assert found is not None and found.queue == "q" and found.owner == "e1"
    info = store.get_run("c", with_events=False)
    assert info is not None and info.queue == "other"


def test_global_concurrency_holds_runs_back_until_one_ends(make_store: StoreFactory) -> None:
    one, other = make_store(), make_store()
    register(one, "e1", "e2")
    one.set_queue(QueueRow("q", concurrency=2), now=time.time())
    runs = [enqueue(one, f"r{i}", "q", now=time.time() + i) for i in range(4)]
    first = one.claim("e1", ["k"], lambda e: True, queues=["q"])
    assert [r.workflow_id for r, _ in first.runs] == ["r0", "r1"] and first.more
    again = other.claim("e2", ["k"], lambda e: True, queues=["q"])
    assert again.runs == [] and again.more
    end(one, runs[0], RunStatus.COMPLETED)
    assert claim(other, "e2", ["q"]) == ["r2"]


def test_worker_concurrency_limits_each_engine(make_store: StoreFactory) -> None:
    one, other = make_store(), make_store()
    register(one, "e1", "e2")
    one.set_queue(QueueRow("q", worker_concurrency=1), now=time.time())
    for i in range(3):
        enqueue(one, f"r{i}", "q", now=time.time() + i)
    assert claim(one, "e1", ["q"]) == ["r0"]
    assert claim(one, "e1", ["q"]) == []
    assert claim(other, "e2", ["q"]) == ["r1"]


def test_a_rate_limit_counts_first_claims_in_the_period(store: Store) -> None:
    register(store, "e1")
    now = time.time()
    store.set_queue(QueueRow("q", rate_limit=2, rate_period=60.0), now=now)
    for i in range(3):
        enqueue(store, f"r{i}", "q", now=now + i)
    got = store.claim("e1", ["k"], lambda e: True, queues=["q"], now=now + 5)
    assert [r.workflow_id for r, _ in got.runs] == ["r0", "r1"] and got.more
    assert got.retry_at is not None and abs(got.retry_at - (now + 65)) < 0.01
    assert claim(store, "e1", ["q"], now=now + 30) == []
    assert claim(store, "e1", ["q"], now=now + 66) == ["r2"]


def test_an_orphan_keeps_its_slot_and_is_taken_over(store: Store) -> None:
    register(store, "dead", "e2")
    store.set_queue(QueueRow("q", concurrency=1), now=time.time())
    enqueue(store, "r0", "q", now=time.time())
    enqueue(store, "r1", "q", now=time.time() + 1)
    assert claim(store, "dead", ["q"]) == ["r0"]
    got = store.claim("e2", ["k"], lambda e: e.id != "dead", queues=["q"])
    assert [r.workflow_id for r, _ in got.runs] == ["r0"] and got.more


def test_limits_are_recorded_and_replaced(store: Store) -> None:
    store.set_queue(QueueRow("q", concurrency=2), now=time.time())
    store.set_queue(QueueRow("q", worker_concurrency=1, rate_limit=5, rate_period=1.0), now=0)
    store.set_queue(QueueRow("a"), now=time.time())
    assert store.list_queues() == [
        QueueRow("a"),
        QueueRow("q", worker_concurrency=1, rate_limit=5, rate_period=1.0),
    ]


def test_the_work_bell_rings_for_waiting_runs_and_the_slot_bell_for_ends(
    make_store: StoreFactory,
) -> None:
    one, other = make_store(), make_store()
    door = other.doorbell.watcher()
    work, slot = other.work_bell.watcher(), other.slot_bell.watcher()

    def after_commit() -> tuple[bool, bool]:
        # A server delivers the bells at commit, asynchronously, the doorbell last: once
        # the doorbell was heard, the work and slot bells of that commit were heard too.
        wait_until(door.rung_by_others, timeout=30, message="the doorbell never rang")
        return work.rung_by_others(), slot.rung_by_others()

    owned = new_run("owned", owner="e1")
    one.commit([Change(new_run=owned, events=[event(owned.execution_id, 1)])])
    assert after_commit() == (False, False)
    enqueue(one, "waiting", "q")
    assert after_commit() == (True, False)
    end(one, owned)
    assert after_commit() == (False, True)
    one.set_queue(QueueRow("q", concurrency=3), now=time.time())
    assert after_commit() == (True, False)
    register(one, "e1")
    assert after_commit() == (False, False)
    one.stop_engine("e1")
    assert after_commit() == (True, False)
