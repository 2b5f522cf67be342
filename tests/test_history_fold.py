"""The history fold: status, steps with attempts, waits and deadlines from an event list.

Histories are the golden recordings under tests/histories/ and small synthetic ones whose
payloads are built through the payload models (so they have the shape the engine writes).
"""

from __future__ import annotations

import ast
import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flovyn_nb.history.events import Event, events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.history.folded import (
    Attempt,
    Deadline,
    DeadlineKind,
    Failure,
    FoldedRun,
    StepKind,
    StepStatus,
    Wait,
    WaitKind,
)
from flovyn_nb.history.replay import History
from flovyn_nb.model import PAYLOADS, EventInfo, RunStatus
from flovyn_nb.model import EventType as E

HERE = Path(__file__).parent
PACKAGE = HERE.parent / "flovyn_nb"
T0 = 1_800_000_000.0  # every synthetic event happens one second after the previous one
ERROR = {"type": "ValueError", "message": "boom", "traceback": "Traceback: ..."}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


class Recorder:
    """Builds a history the way the engine writes one: payloads through their models."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event_type: E, /, **fields: Any) -> Recorder:
        payload = PAYLOADS[event_type](**fields).dump()
        seq = len(self.events) + 1
        self.events.append(Event(seq, event_type, payload, T0 + seq))
        return self

    def started(self, workflow_id: str = "wf-1", kind: str = "order") -> Recorder:
        return self(
            E.WORKFLOW_STARTED, workflow_id=workflow_id, kind=kind, input=7, source_hash="abc"
        )

    def fold(self) -> FoldedRun:
        return fold(self.events)


def golden(name: str) -> list[Event]:
    data = json.loads((HERE / "histories" / name).read_text(encoding="utf-8"))
    infos = [EventInfo.model_validate(e) for e in data["events"]]
    return events_of(infos)


def replay_numbers(events: list[Event]) -> list[int]:
    """Step numbers of the commands as the replay index numbers them."""
    history = History("wf", [(e.seq, e.type.value, e.payload, e.ts) for e in events])
    return [rec.step for recs in history.commands.values() for rec in recs]


# -- golden histories ------------------------------------------------------------------------


def test_the_golden_history_folds_into_its_steps_and_the_open_promise() -> None:
    events = golden("golden_order_valid.json")
    run = fold(events)
    assert run.status is RunStatus.WAITING
    assert (run.workflow_id, run.kind, run.input, run.source_hash) == (
        "golden-A1",
        "golden-order",
        "A1",
        "b2740ae0f89d6b73",
    )
    assert run.started_at == events[0].ts and run.ended_at is None
    assert [(s.number, s.kind, s.label, s.status) for s in run.steps] == [
        (1, StepKind.TASK, "recovery-step", StepStatus.COMPLETED),
        (2, StepKind.STATE, "reserved", StepStatus.SET),
        (3, StepKind.TIMER, "timer-1", StepStatus.FIRED),
        (4, StepKind.TASK, "recovery-step #2", StepStatus.COMPLETED),
        (5, StepKind.TASK, "recovery-step #3", StepStatus.COMPLETED),
        (6, StepKind.PROMISE, "approve", StepStatus.PENDING),
    ]
    reserve, state, timer, pack1, pack2, approve = run.steps
    assert (reserve.input, reserve.value, reserve.attempt_count) == ("reserve-A1", "RESERVE-A1", 1)
    assert [a.status for a in reserve.attempts] == [StepStatus.COMPLETED]
    assert state.value == "RESERVE-A1"
    # A fired timer keeps its fire time, but no longer has a deadline.
    assert timer.due == datetime.fromisoformat("2026-11-22T14:20:43.156237Z").timestamp()
    assert timer.deadline is None and timer.end == events[6].ts
    assert (pack1.input, pack2.input) == ("pack-A1-1", "pack-A1-2")
    assert approve.schema == {"additionalProperties": True, "type": "object"}
    assert run.pending_promises == (approve,)
    # A promise without a timeout: a wait, but no deadline.
    assert run.waits == (Wait(WaitKind.PROMISE, "promise:approve", "approve", approve.start, None),)
    assert run.next_deadline is None
    assert run.last_seq == 14


def test_step_numbers_are_the_replay_numbers_so_a_violation_names_the_same_step() -> None:
    for name in ("golden_order_valid.json", "golden_order_nondeterministic.json"):
        events = golden(name)
        run = fold(events)
        assert sorted(replay_numbers(events)) == [s.number for s in run.commands], name
    # The older code's history holds a task where the current code sleeps: tests/
    # test_recovery.py sees "at step 3 history recorded schedule(task 'recovery-step')".
    older = fold(golden("golden_order_nondeterministic.json"))
    assert (older.step(3).kind, older.step(3).label) == (StepKind.TASK, "recovery-step #2")
    with pytest.raises(KeyError):
        older.step(6)


# -- tasks -----------------------------------------------------------------------------------


def test_a_retried_task_has_every_attempt_and_waits_for_its_next_one() -> None:
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch", input="u", max_attempts=3)
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1, deadline=at(30))
    running = h.fold()
    [task] = running.steps
    assert task.status is StepStatus.RUNNING
    assert task.deadline == Deadline(T0 + 30, DeadlineKind.TIMES_OUT)
    assert running.waits == () and running.next_deadline is None  # a running task is no wait
    h(
        E.TASK_RETRY_SCHEDULED,
        task_execution_id="t1",
        attempt=1,
        next_attempt_at=at(60),
        error=ERROR,
        timed_out=True,
    )
    retrying = h.fold()
    [task] = retrying.steps
    assert task.status is StepStatus.RETRYING and task.active
    assert task.deadline == Deadline(T0 + 60, DeadlineKind.RETRIES)
    assert retrying.waits == (Wait(WaitKind.RETRY, "t1", "fetch", T0 + 2, T0 + 60),)
    assert retrying.next_deadline == T0 + 60
    h(E.TASK_STARTED, task_execution_id="t1", attempt=2)
    h(E.TASK_FAILED, task_execution_id="t1", attempt=2, error={**ERROR, "message": "again"})
    run = h.fold()
    [task] = run.steps
    assert (task.status, task.end, task.deadline) == (StepStatus.FAILED, T0 + 6, None)
    assert task.error == Failure("ValueError", "again", "Traceback: ...")
    assert (task.max_attempts, task.attempt_count) == (3, 2)
    assert task.attempts == (
        Attempt(
            1,
            StepStatus.FAILED,
            started_at=T0 + 3,
            ended_at=T0 + 4,
            deadline=T0 + 30,
            error=Failure("ValueError", "boom", "Traceback: ..."),
            timed_out=True,
            retry_at=T0 + 60,
        ),
        Attempt(
            2,
            StepStatus.FAILED,
            started_at=T0 + 5,
            ended_at=T0 + 6,
            error=Failure("ValueError", "again", "Traceback: ..."),
        ),
    )
    assert run.waits == () and run.next_deadline is None
    # The workflow itself goes on (it may catch TaskFailed): the history says RUNNING.
    assert run.status is RunStatus.RUNNING


def test_a_task_that_succeeds_on_its_second_attempt() -> None:
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch", max_attempts=2)
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1)
    h(E.TASK_RETRY_SCHEDULED, task_execution_id="t1", attempt=1, next_attempt_at=at(9), error=ERROR)
    h(E.TASK_STARTED, task_execution_id="t1", attempt=2)
    h(E.TASK_COMPLETED, task_execution_id="t1", attempt=2, output={"rows": 3})
    [task] = h.fold().steps
    assert (task.status, task.value, task.error) == (StepStatus.COMPLETED, {"rows": 3}, None)
    assert [(a.number, a.status, a.retry_at) for a in task.attempts] == [
        (1, StepStatus.FAILED, T0 + 9),
        (2, StepStatus.COMPLETED, None),
    ]


def test_a_second_start_of_the_same_attempt_restarts_it() -> None:
    """A run resumed after a crash starts the interrupted attempt again."""
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch")
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1)
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1)
    [task] = h.fold().steps
    assert task.attempts == (Attempt(1, StepStatus.RUNNING, started_at=T0 + 4),)


# -- timers, promises, signals ---------------------------------------------------------------


def test_timers_wait_until_they_fire_and_the_run_waits_with_them() -> None:
    h = Recorder().started()
    h(E.TIMER_STARTED, timer_id="timer-1", fire_at=at(100))
    sleeping = h.fold()
    assert sleeping.status is RunStatus.WAITING
    [timer] = sleeping.steps
    assert (timer.number, timer.status, timer.due) == (1, StepStatus.WAITING, T0 + 100)
    assert timer.deadline == Deadline(T0 + 100, DeadlineKind.FIRES)
    assert sleeping.waits == (Wait(WaitKind.TIMER, "timer:timer-1", "timer-1", T0 + 2, T0 + 100),)
    assert sleeping.next_deadline == T0 + 100
    h(E.TIMER_FIRED, timer_id="timer-1")
    awake = h.fold()
    assert awake.status is RunStatus.RUNNING
    [timer] = awake.steps
    assert (timer.status, timer.deadline, timer.due) == (StepStatus.FIRED, None, T0 + 100)
    assert awake.waits == ()


def test_promises_time_out_are_rejected_or_resolved() -> None:
    h = Recorder().started()
    for name, timeout in (("a", 50), ("b", 40), ("c", None)):
        h(
            E.PROMISE_CREATED,
            promise_id=f"x:{name}",
            promise_name=name,
            timeout_at=None if timeout is None else at(timeout),
        )
    waiting = h.fold()
    assert waiting.status is RunStatus.WAITING
    assert [(w.name, w.deadline) for w in waiting.waits] == [
        ("a", T0 + 50),
        ("b", T0 + 40),
        ("c", None),
    ]
    assert waiting.next_deadline == T0 + 40  # the earliest of them
    h(E.PROMISE_TIMEOUT, promise_id="x:b", promise_name="b")
    h(E.PROMISE_REJECTED, promise_id="x:a", promise_name="a", error="no budget", resolved_by="ann")
    h(E.PROMISE_RESOLVED, promise_id="x:c", promise_name="c", value={"ok": 1}, resolved_by="bob")
    run = h.fold()
    a, b, c = run.steps
    assert (b.status, b.end, b.deadline, b.due) == (StepStatus.TIMED_OUT, T0 + 5, None, T0 + 40)
    assert (a.status, a.error, a.resolved_by) == (
        StepStatus.REJECTED,
        Failure("PromiseRejected", "no budget"),
        "ann",
    )
    assert (c.status, c.value, c.resolved_by) == (StepStatus.RESOLVED, {"ok": 1}, "bob")
    assert run.waits == () and run.pending_promises == ()
    assert run.status is RunStatus.RUNNING


def test_a_signal_wait_timeout_is_a_wait_but_not_a_numbered_step() -> None:
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch")
    h(E.TIMER_STARTED, timer_id="signal-1", fire_at=at(20))
    waiting = h.fold()
    assert waiting.next_deadline == T0 + 20
    h(E.SIGNAL_RECEIVED, signal_id="s1", signal_name="go", value=5)
    h(E.TIMER_CANCELLED, timer_id="signal-1")
    h(E.TIMER_STARTED, timer_id="timer-1", fire_at=at(30))
    run = h.fold()
    assert [(s.number, s.kind, s.name, s.status) for s in run.steps] == [
        (1, StepKind.TASK, "fetch", StepStatus.SCHEDULED),
        (None, StepKind.TIMER, "signal-1", StepStatus.CANCELLED),
        (None, StepKind.SIGNAL, "go", StepStatus.RECEIVED),
        (2, StepKind.TIMER, "timer-1", StepStatus.WAITING),
    ]
    assert run.steps[2].value == 5
    assert replay_numbers(h.events) == [1, 2]


# -- children, operations, state -------------------------------------------------------------


def test_children_operations_and_state_changes_are_steps_in_issue_order() -> None:
    h = Recorder().started()
    h(E.CHILD_WORKFLOW_INITIATED, child_execution_id="c1", child_workflow_id="k-1", kind="kid")
    h(E.OPERATION_COMPLETED, operation_name="now", result=12.5)
    h(E.STATE_SET, key="n", value=1)
    h(E.CHILD_WORKFLOW_INITIATED, child_execution_id="c2", child_workflow_id="k-2", kind="kid")
    h(E.STATE_CLEARED, key="n")
    h(E.CHILD_WORKFLOW_INITIATED, child_execution_id="c3", child_workflow_id="k-3", kind="kid")
    h(E.CHILD_WORKFLOW_COMPLETED, child_execution_id="c1", output="done")
    h(E.CHILD_WORKFLOW_FAILED, child_execution_id="c2", error=ERROR)
    h(E.CHILD_WORKFLOW_FAILED, child_execution_id="c3", error=ERROR, cancelled=True)
    run = h.fold()
    assert [(s.number, s.kind, s.label, s.status) for s in run.steps] == [
        (1, StepKind.CHILD, "kid", StepStatus.COMPLETED),
        (2, StepKind.OPERATION, "now", StepStatus.COMPLETED),
        (3, StepKind.STATE, "n", StepStatus.SET),
        (4, StepKind.CHILD, "kid #2", StepStatus.FAILED),
        (5, StepKind.STATE, "n #2", StepStatus.CLEARED),
        (6, StepKind.CHILD, "kid #3", StepStatus.CANCELLED),
    ]
    kid1, now, state_set, kid2, _, kid3 = run.steps
    assert (kid1.child_workflow_id, kid1.value, kid1.end) == ("k-1", "done", T0 + 8)
    assert (kid2.error, kid3.child_workflow_id) == (Failure.of(ERROR), "k-3")
    assert (now.value, state_set.value) == (12.5, 1)
    assert len({s.key for s in run.steps}) == len(run.steps)  # keys are unique in a run
    assert replay_numbers(h.events) == [1, 4, 6, 2, 3, 5]  # per family, same numbers


# -- how runs end ----------------------------------------------------------------------------


def test_a_cancelled_run_closes_what_was_open() -> None:
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch")
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1)
    h(E.PROMISE_CREATED, promise_id="x:ok", promise_name="ok", timeout_at=at(99))
    h(E.CANCELLATION_REQUESTED, reason="user")
    requested = h.fold()
    assert requested.cancel_requested and requested.status is RunStatus.WAITING
    h(E.TASK_CANCELLED, task_execution_id="t1")
    h(E.WORKFLOW_CANCELLED, output="partial")
    run = h.fold()
    assert (run.status, run.output, run.ended_at) == (RunStatus.CANCELLED, "partial", T0 + 7)
    task, promise = run.steps
    assert (task.status, task.end) == (StepStatus.CANCELLED, T0 + 6)
    assert task.attempts[0].status is StepStatus.CANCELLED
    assert (promise.status, promise.end, promise.deadline) == (StepStatus.CANCELLED, T0 + 7, None)
    assert run.waits == () and run.next_deadline is None


def test_a_failed_run_has_its_error_and_abandons_open_steps() -> None:
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch")
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1)
    h(E.TIMER_STARTED, timer_id="timer-1", fire_at=at(50))
    h(E.WORKFLOW_EXECUTION_FAILED, error=ERROR)
    run = h.fold()
    assert (run.status, run.error, run.output) == (RunStatus.FAILED, Failure.of(ERROR), None)
    task, timer = run.steps
    assert (task.status, task.end) == (StepStatus.ABANDONED, T0 + 5)
    assert task.attempts[0] == Attempt(1, StepStatus.ABANDONED, T0 + 3, T0 + 5)
    assert (timer.status, timer.deadline) == (StepStatus.ABANDONED, None)
    assert run.waits == ()


def test_a_completed_run_has_its_output() -> None:
    h = Recorder().started()
    h(E.WORKFLOW_COMPLETED, output={"total": 3})
    run = h.fold()
    assert (run.status, run.output, run.error) == (RunStatus.COMPLETED, {"total": 3}, None)


def test_no_history_is_a_pending_run() -> None:
    assert fold([]) == FoldedRun(status=RunStatus.PENDING)


# -- the shape of the result -----------------------------------------------------------------


def test_the_fold_is_frozen_plain_data() -> None:
    h = Recorder().started()
    h(E.TASK_SCHEDULED, task_execution_id="t1", task_kind="fetch")
    h(E.TASK_STARTED, task_execution_id="t1", attempt=1)
    run = h.fold()
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.status = RunStatus.FAILED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.steps[0].attempts[0].number = 2  # type: ignore[misc]
    assert isinstance(run.steps, tuple) and isinstance(run.steps[0].attempts, tuple)


def test_events_read_through_the_client_fold_like_recorded_ones() -> None:
    h = Recorder().started()
    h(E.PROMISE_CREATED, promise_id="x:ok", promise_name="ok", timeout_at=at(9))
    infos = [
        EventInfo(seq=e.seq, type=e.type, payload=e.payload, ts=datetime.fromtimestamp(e.ts, UTC))
        for e in h.events
    ]
    assert fold(events_of(infos)) == h.fold()


def test_widgets_and_kernel_do_not_read_event_types_themselves() -> None:
    """Only history/ interprets events: no event type name as a string outside it."""
    names = {kind.value for kind in E}
    paths = [*(PACKAGE / "widgets").glob("*.py"), *(PACKAGE / "kernel").glob("*.py")]
    found = [
        f"{path.name}:{node.lineno} {node.value}"
        for path in sorted(paths)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant) and node.value in names
    ]
    assert found == []
