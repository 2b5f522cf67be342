"""history.attempts: which events a retry or a fork keeps, and where they cut (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from flovyn_nb.history.attempts import cut, effective, retry_point, step_point
from flovyn_nb.history.events import Event
from flovyn_nb.history.fold import fold
from flovyn_nb.history.replay import History
from flovyn_nb.model import EventType as E
from flovyn_nb.model import RunStatus


def _history(*items: tuple[E, dict[str, Any]]) -> list[Event]:
    return [Event(seq, kind, payload, float(seq)) for seq, (kind, payload) in enumerate(items, 1)]


START = (E.WORKFLOW_STARTED, {"workflowId": "w", "kind": "k"})


def task(kind: E, tid: str, **extra: Any) -> tuple[E, dict[str, Any]]:
    return kind, {"taskExecutionId": tid, "taskKind": "t", **extra}


# a, b scheduled in parallel; b fails while c is scheduled; a completes after c was issued
PARALLEL = _history(
    START,
    task(E.TASK_SCHEDULED, "a"),  # 2, step 1
    task(E.TASK_SCHEDULED, "b"),  # 3, step 2
    task(E.TASK_FAILED, "b"),  # 4
    task(E.TASK_SCHEDULED, "c"),  # 5, step 3
    task(E.TASK_COMPLETED, "a"),  # 6
    (E.SIGNAL_RECEIVED, {"signalName": "s"}),  # 7
    (E.WORKFLOW_EXECUTION_FAILED, {"error": {"type": "X", "message": "m"}}),  # 8
)


def test_a_retry_starts_from_the_first_failed_step_keeping_earlier_successes() -> None:
    point = retry_point(PARALLEL)
    assert (point.seq, point.step, point.label) == (3, 2, "schedule(task 't')")
    kept = [ev.seq for ev in cut(PARALLEL, point.seq)]
    assert kept == [1, 2, 6, 7]  # a's late completion and the signal are kept


def test_with_no_failed_step_the_code_after_the_last_step_runs_again() -> None:
    events = _history(
        START,
        task(E.TASK_SCHEDULED, "a"),
        task(E.TASK_COMPLETED, "a"),
        (E.WORKFLOW_EXECUTION_FAILED, {"error": {"type": "ZeroDivisionError", "message": ""}}),
    )
    point = retry_point(events)
    assert (point.seq, point.step) == (4, None)


def test_replay_and_the_fold_see_the_current_attempt_and_keep_the_earlier() -> None:
    marker = (E.WORKFLOW_RETRIED, {"attempt": 2, "fromSeq": 3, "fromStep": 2})
    events = _history(*[(ev.type, ev.payload) for ev in PARALLEL], marker)
    assert [ev.seq for ev in effective(events)] == [1, 2, 6, 7]
    history = History("w", [(ev.seq, ev.type.value, ev.payload, ev.ts) for ev in events])
    assert (history.attempt, history.last_seq, history.ended) == (2, 9, None)
    assert [rec.seq for rec in history.commands["task"]] == [2]
    folded = fold(events)
    assert folded.status is RunStatus.RUNNING and folded.attempt == 2
    assert [s.key for s in folded.commands] == ["a"]
    [first] = folded.earlier
    assert (first.number, first.status, first.from_step) == (1, RunStatus.FAILED, 2)
    assert [s.key for s in first.steps if s.number] == ["a", "b", "c"]


def test_fork_points_by_number_or_first_name() -> None:
    assert step_point(PARALLEL, 3).seq == 5
    assert step_point(PARALLEL, "t").step == 1
    with pytest.raises(LookupError, match="step 4 is out of range: the run has 3 steps"):
        step_point(PARALLEL, 4)
    with pytest.raises(LookupError, match="no step named 'x'; its steps are named 't'"):
        step_point(PARALLEL, "x")
