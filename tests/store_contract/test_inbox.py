"""Store contract: writes any process makes into a run's inbox (promises, signals,
cancellation), and how the owner takes them."""

from __future__ import annotations

import time

import pytest
from contract_helpers import StoreFactory, end, promise, row, settle, start

from flovyn_nb.errors import (
    InvalidInput,
    PromiseAlreadyResolved,
    UnknownPromise,
    UnknownWorkflow,
)
from flovyn_nb.model import PromiseStatus, RunStatus
from flovyn_nb.store import (
    Change,
    MarkSignalDelivered,
    ResetPromise,
    SendSignal,
    Store,
    TimeOutPromises,
    as_stored,
)

SCHEMA = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}},
    "required": ["approved"],
}


def _status(store: Store, workflow_id: str, name: str) -> tuple[PromiseStatus, object]:
    [info] = [p for p in store.promises(pending_only=False) if p.workflow_id == workflow_id]
    assert info.name == name
    return info.status, info.value


def test_a_promise_settles_once_and_its_first_value_stays(make_store: StoreFactory) -> None:
    owner, other = make_store(), make_store()
    run = start(owner, "w-once")
    promise(owner, run, "ok")
    settled = other.settle_promise(settle("w-once", "ok", {"approved": True}, resolved_by="a"))
    assert (settled.status, settled.value, settled.resolved_by) == (
        PromiseStatus.RESOLVED,
        {"approved": True},
        "a",
    )
    with pytest.raises(PromiseAlreadyResolved, match="already resolved"):
        other.settle_promise(settle("w-once", "ok", {"approved": False}))
    with pytest.raises(PromiseAlreadyResolved):
        other.settle_promise(settle("w-once", "ok", reject=True))
    assert _status(owner, "w-once", "ok") == (PromiseStatus.RESOLVED, {"approved": True})


def test_a_promise_past_its_deadline_cannot_be_settled(store: Store) -> None:
    run = start(store, "w-late")
    deadline = as_stored(time.time() + 60)  # the store keeps deadlines to the microsecond
    promise(store, run, "ok", timeout_at=deadline)
    with pytest.raises(PromiseAlreadyResolved, match="timed out") as caught:
        store.settle_promise(settle("w-late", "ok", 1, now=deadline))  # at it: too late
    assert caught.value.status == PromiseStatus.TIMED_OUT.value
    assert _status(store, "w-late", "ok") == (PromiseStatus.PENDING, None)
    store.settle_promise(settle("w-late", "ok", 1, now=deadline - 0.001))  # just before
    assert _status(store, "w-late", "ok") == (PromiseStatus.RESOLVED, 1)


def test_a_promise_resolved_before_the_workflow_reaches_it_keeps_the_value(
    store: Store,
) -> None:
    run = start(store, "w-early")
    early = store.settle_promise(settle("w-early", "later", "v"))
    assert early.execution_id == run.execution_id
    created = promise(store, run, "later", timeout_at=time.time() + 60)
    assert created.id == early.id
    assert (created.status, created.value) == (PromiseStatus.RESOLVED, "v")
    assert created.timeout_at is not None  # the workflow's deadline is added
    with pytest.raises(UnknownPromise):
        store.settle_promise(settle("w-early", "never", "v", require_existing=True))


def test_a_value_is_checked_against_the_stored_schema(store: Store) -> None:
    run = start(store, "w-schema")
    promise(store, run, "ok", schema=SCHEMA)
    with pytest.raises(InvalidInput, match="'ok'"):
        store.settle_promise(settle("w-schema", "ok", {"approved": "yes"}))
    assert _status(store, "w-schema", "ok") == (PromiseStatus.PENDING, None)
    store.settle_promise(settle("w-schema", "ok", {"approved": True}))
    assert _status(store, "w-schema", "ok")[0] is PromiseStatus.RESOLVED


def test_unknown_or_ended_runs_refuse_inbox_writes(store: Store) -> None:
    with pytest.raises(UnknownWorkflow):
        store.settle_promise(settle("nope", "ok", 1))
    with pytest.raises(UnknownWorkflow):
        store.send_signal(SendSignal("nope", "go", 1, time.time()))
    with pytest.raises(UnknownWorkflow):
        store.request_cancel("nope")
    run = start(store, "w-ended")
    end(store, run)
    with pytest.raises(InvalidInput, match="already ended"):
        store.settle_promise(settle("w-ended", "ok", 1))
    with pytest.raises(InvalidInput, match="already ended"):
        store.send_signal(SendSignal("w-ended", "go", 1, time.time()))
    with pytest.raises(InvalidInput, match="already ended"):
        store.request_cancel("w-ended")
    assert store.promises(pending_only=False) == []
    assert store.undelivered([run.execution_id]).signals == []


def test_timeouts_time_out_only_pending_promises(store: Store) -> None:
    run = start(store, "w-timeouts")
    deadline = time.time() + 60
    waiting = promise(store, run, "waiting", timeout_at=deadline)
    answered = promise(store, run, "answered", timeout_at=deadline)
    store.settle_promise(settle("w-timeouts", "answered", 7))
    rows = {r.name: r for r in store.time_out_promises([waiting.id, answered.id])}
    assert rows["waiting"].status is PromiseStatus.TIMED_OUT
    assert rows["waiting"].delivered  # the owner hands the timeout over itself
    assert (rows["answered"].status, rows["answered"].value) == (PromiseStatus.RESOLVED, 7)
    # Names given by a callable are taken inside the transaction.
    third = promise(store, run, "third", timeout_at=deadline)
    [timed_out] = store.commit([Change(intents=[TimeOutPromises(lambda: [third.id])])])[0]
    assert timed_out.status is PromiseStatus.TIMED_OUT
    with pytest.raises(PromiseAlreadyResolved, match="timed out"):
        store.settle_promise(settle("w-timeouts", "third", 1))


def test_settled_promises_wait_in_the_inbox_until_delivered(store: Store) -> None:
    run = start(store, "w-deliver")
    first = promise(store, run, "first")
    promise(store, run, "second")
    store.settle_promise(settle("w-deliver", "first", 1))
    store.settle_promise(settle("w-deliver", "second", reject=True))
    inbox = store.undelivered([run.execution_id])
    assert sorted((p.name, p.status) for p in inbox.promises) == [
        ("first", PromiseStatus.RESOLVED),
        ("second", PromiseStatus.REJECTED),
    ]
    store.commit([Change(delivered=[first.id])])
    assert [p.name for p in store.undelivered([run.execution_id]).promises] == ["second"]
    store.commit([Change(intents=[ResetPromise(first.id)])])  # pending again, undelivered
    assert _status_of(store, "first") == (PromiseStatus.PENDING, None)


def _status_of(store: Store, name: str) -> tuple[PromiseStatus, object]:
    [info] = [p for p in store.promises(pending_only=False) if p.name == name]
    return info.status, info.value


def test_signals_arrive_in_order_per_run_until_delivered(make_store: StoreFactory) -> None:
    owner, sender = make_store(), make_store()
    one = start(owner, "w-sig-1")
    two = start(owner, "w-sig-2")
    now = time.time()
    for i in range(5):
        sender.send_signal(SendSignal("w-sig-1", "go", i, now + i))
    sender.send_signal(SendSignal("w-sig-2", "other", {"x": [1]}, now))
    inbox = owner.undelivered([one.execution_id, two.execution_id])
    mine = [s for s in inbox.signals if s.execution_id == one.execution_id]
    assert [(s.name, s.value) for s in mine] == [("go", i) for i in range(5)]
    [theirs] = [s for s in inbox.signals if s.execution_id == two.execution_id]
    assert theirs.value == {"x": [1]}
    owner.commit([Change(intents=[MarkSignalDelivered(mine[0].id)])])
    left = owner.undelivered([one.execution_id]).signals
    assert [s.value for s in left] == [1, 2, 3, 4]
    with pytest.raises(InvalidInput, match="non-empty name"):
        sender.send_signal(SendSignal("w-sig-1", "", 1, now))
    assert row(owner, "w-sig-1").status is RunStatus.RUNNING


def test_signals_sent_at_the_same_instant_arrive_in_sending_order(
    make_store: StoreFactory,
) -> None:
    # Under a FakeClock every signal has the same timestamp: order must not depend on it.
    owner, sender = make_store(), make_store()
    run = start(owner, "w-sig-tie")
    other = start(owner, "w-sig-tie-2")
    now = time.time()
    for i in range(8):
        sender.send_signal(SendSignal("w-sig-tie", "go", i, now))
        sender.send_signal(SendSignal("w-sig-tie-2", "go", -i, now))
    mine = owner.undelivered([run.execution_id]).signals
    assert [s.value for s in mine] == list(range(8))
    owner.commit([Change(intents=[MarkSignalDelivered(mine[0].id)])])
    sender.send_signal(SendSignal("w-sig-tie", "go", 8, now))
    both = owner.undelivered([run.execution_id, other.execution_id]).signals
    assert [s.value for s in both if s.execution_id == run.execution_id] == list(range(1, 9))
    assert [s.value for s in both if s.execution_id == other.execution_id] == [-i for i in range(8)]


def test_a_cancel_request_reaches_the_owners_inbox(make_store: StoreFactory) -> None:
    owner, other = make_store(), make_store()
    run = start(owner, "w-cancel")
    quiet = start(owner, "w-quiet")
    assert other.request_cancel("w-cancel").id == run.execution_id
    assert owner.undelivered([run.execution_id, quiet.execution_id]).cancels == [run.execution_id]
    assert row(owner, "w-cancel").cancel_requested


def test_a_cancel_request_carries_its_reason_to_the_owner(make_store: StoreFactory) -> None:
    owner, other = make_store(), make_store()
    run = start(owner, "w-cancel-why")
    plain = start(owner, "w-cancel-plain")
    other.request_cancel("w-cancel-why", "budget exceeded")
    other.request_cancel("w-cancel-why", "a second reason")  # the first one given stays
    other.request_cancel("w-cancel-plain")
    inbox = owner.undelivered([run.execution_id, plain.execution_id])
    assert sorted(inbox.cancels) == sorted([run.execution_id, plain.execution_id])
    assert inbox.cancel_reasons == {run.execution_id: "budget exceeded"}
