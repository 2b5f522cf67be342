"""Crash recovery and replay, with real processes and ``kill -9``.

A worker process (tests/recovery/worker.py) starts an engine and a run, the test waits for
an observable point (a line in the side-effect file, an event or a pending promise in the
store) and kills the worker with SIGKILL. An engine in this process then takes the run
over, because its owner's PID is gone, and replays it from the store.

The golden histories in tests/histories/ are real engine recordings (regenerate them with
``.venv/bin/python tests/recovery/record_histories.py``); they are replayed against today's
code, as Temporal's replayer tests do.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from recovery import workflows

import flovyn_nb as fn
from flovyn_nb import WorkflowContext, client
from flovyn_nb.errors import StoreError, UnknownWorkflow, WorkflowFailed
from flovyn_nb.model import EventInfo, RunStatus
from flovyn_nb.store import Change, EventRow, NewRun, open_store
from flovyn_nb.testing import FakeClock, temporary_engine, wait_until


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """The engine tests of this module run on both backends (see tests/conftest.py);
    on PostgreSQL only those in POSTGRES_TESTS, to keep the suite's time."""
    return store_target


POSTGRES_TESTS = {
    "test_killed_run_resumes_without_rerunning_completed_tasks",
    "test_two_new_engines_racing_for_a_dead_run_execute_it_once",
    "test_golden_history_replays_and_completes",
    "test_golden_history_of_older_code_is_a_determinism_violation",
}


HERE = Path(__file__).resolve().parent
WORKER = HERE / "recovery" / "worker.py"
HISTORIES = HERE / "histories"
STARTUP = 30.0  # a cold interpreter importing duckdb + pydantic on a busy machine
FINISH = 15.0

pytestmark = pytest.mark.slow


# -- helpers -------------------------------------------------------------------------------


@pytest.fixture
def side_effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file every task appends its name to, here and in the worker processes."""
    path = tmp_path / "side-effects.txt"
    monkeypatch.setenv(workflows.SIDE_EFFECTS_ENV, str(path))
    monkeypatch.delenv(workflows.HANG_ENV, raising=False)
    return path


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


class Worker:
    """A worker process running one run on ``store``; killed with SIGKILL by the test."""

    def __init__(
        self,
        tmp_path: Path,
        store: Path,
        kind: str,
        workflow_id: str,
        input: Any,
        *,
        define: str | None = None,
        hang_in: tuple[str, ...] = (),
        engine_only: bool = False,
    ) -> None:
        self.output = tmp_path / f"worker-{workflow_id}-{uuid.uuid4().hex[:6]}.log"
        env = dict(os.environ)
        env[workflows.HANG_ENV] = ",".join(hang_in)
        command = [sys.executable, str(WORKER), str(store), kind, workflow_id, json.dumps(input)]
        if define is not None:
            command += ["--define", define]
        if engine_only:
            command.append("--engine-only")
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, condition: Callable[[], Any], what: str) -> Any:
        """Wait until ``condition()`` is truthy; fail at once if the worker died instead."""

        def check() -> Any:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"the worker exited ({self.proc.returncode}) before {what}:\n{self.log()}"
                )
            return condition()

        return wait_until(check, timeout=STARTUP, message=f"{what}; worker said:\n{self.log()}")

    def kill(self) -> None:
        """``kill -9`` and reap it (a zombie's PID would still count as alive)."""
        assert self.proc.poll() is None, f"the worker was already gone:\n{self.log()}"
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=10) == -signal.SIGKILL


@pytest.fixture
def spawn(tmp_path: Path, side_effects: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(*args: Any, **kwargs: Any) -> Worker:
        worker = Worker(tmp_path, *args, **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        if worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(timeout=10)


def polled(query: Callable[[], Any]) -> Any:
    """``query()``, or None while the worker has not created the store or the run yet."""
    try:
        return query()
    except (UnknownWorkflow, StoreError):
        return None


def events_in(store: Path, workflow_id: str) -> list[EventInfo]:
    """The run's history read from the store (empty while it does not exist yet)."""
    run = polled(lambda: fn.get_run(workflow_id, store=store))
    return [] if run is None else run.events


def pending_names(store: Path, workflow_id: str) -> list[str]:
    promises = polled(lambda: fn.pending_promises(workflow_id, store=store)) or []
    return [p.name for p in promises]


def of_type(events: list[EventInfo], kind: str) -> list[EventInfo]:
    return [e for e in events if e.type.value == kind]


def epoch(text: Any) -> float:
    return datetime.fromisoformat(str(text)).timestamp()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- 1. completed tasks are not executed again ------------------------------------------------


@pytest.mark.parametrize("kind", ["recovery-pipeline", "recovery-sync-pipeline"])
def test_killed_run_resumes_without_rerunning_completed_tasks(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker], kind: str
) -> None:
    wid = new_id("pipeline")
    worker = spawn(store_path, kind, wid, ["a", "b", "c", "d"], hang_in=("c",))
    worker.wait_for(lambda: lines(side_effects) == ["a", "b", "c"], "task c started")
    # Before the kill: a and b are durably complete, c is in flight.
    completed = of_type(events_in(store_path, wid), "TASK_COMPLETED")
    assert [e.payload["output"] for e in completed] == ["A", "B"]
    worker.kill()

    with temporary_engine(store=store_path) as engine:
        assert fn.get_handle(wid).result(timeout=FINISH) == ["A", "B", "C", "D"]
        run = fn.get_run(wid)
    assert engine.errors == []

    # a and b ran once; c was in flight at the kill, so it runs again (at least once).
    assert lines(side_effects) == ["a", "b", "c", "c", "d"]
    assert run.status is RunStatus.COMPLETED
    scheduled = of_type(run.events, "TASK_SCHEDULED")
    assert [e.payload["input"] for e in scheduled] == ["a", "b", "c", "d"]
    c_id = scheduled[2].payload["taskExecutionId"]
    c_attempts = [
        e.payload["attempt"]
        for e in of_type(run.events, "TASK_STARTED")
        if e.payload["taskExecutionId"] == c_id
    ]
    assert c_attempts == [1, 2]
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))


def test_recovery_waits_until_the_workflow_is_registered(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    kind = new_id("recovery-late")  # unknown to this process until the test defines it
    wid = new_id("late")
    worker = spawn(store_path, kind, wid, ["a", "b"], define="late", hang_in=("b",))
    worker.wait_for(lambda: lines(side_effects) == ["a", "b"], "task b started")
    worker.kill()

    with temporary_engine(store=store_path) as engine:
        # Nothing to run it with: the run stays with its dead owner, untouched.
        run = fn.get_run(wid)
        assert run.status is not RunStatus.COMPLETED
        assert run.owner != engine.id
        activity = client.activity()
        assert activity is not None and activity.runs == []

        workflows.define_late_pipeline(kind)  # registering it recovers the run
        assert fn.get_handle(wid).result(timeout=FINISH) == ["A", "B"]
    assert engine.errors == []
    assert lines(side_effects) == ["a", "b", "b"]


def test_a_run_survives_two_crashes_in_a_row(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("twice")
    kind = "recovery-pipeline"
    first = spawn(store_path, kind, wid, ["a", "b", "c", "d"], hang_in=("b",))
    first.wait_for(lambda: lines(side_effects) == ["a", "b"], "task b started")
    first.kill()
    # A second process takes the run over, gets one step further, and dies too.
    second = spawn(store_path, kind, wid, None, engine_only=True, hang_in=("c",))
    second.wait_for(lambda: lines(side_effects) == ["a", "b", "b", "c"], "task c started")
    second.kill()

    with temporary_engine(store=store_path) as engine:
        assert fn.get_handle(wid).result(timeout=FINISH) == ["A", "B", "C", "D"]
        run = fn.get_run(wid)
    assert engine.errors == []
    assert lines(side_effects) == ["a", "b", "b", "c", "c", "d"]
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))
    assert [e.payload["input"] for e in of_type(run.events, "TASK_SCHEDULED")] == [
        "a",
        "b",
        "c",
        "d",
    ]


def test_two_new_engines_racing_for_a_dead_run_execute_it_once(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("race")
    kind = "recovery-pipeline"
    first = spawn(store_path, kind, wid, ["a", "b", "c"], hang_in=("b",))
    first.wait_for(lambda: lines(side_effects) == ["a", "b"], "task b started")
    first.kill()
    racers = [spawn(store_path, kind, wid, None, engine_only=True) for _ in range(2)]
    racers[0].wait_for(
        lambda: (
            polled(lambda: fn.get_run(wid, events=False, store=store_path).status)
            is RunStatus.COMPLETED
        ),
        "the run completed",
    )
    assert all(r.proc.poll() is None for r in racers)
    assert lines(side_effects) == ["a", "b", "b", "c"]
    run = fn.get_run(wid, store=store_path)
    assert run.output == ["A", "B", "C"]
    assert len(of_type(run.events, "WORKFLOW_COMPLETED")) == 1


def test_recorded_time_randomness_and_side_effects_replay_identically(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("deterministic")
    worker = spawn(store_path, "recovery-deterministic", wid, None, hang_in=("finish",))
    worker.wait_for(lambda: lines(side_effects)[-1:] == ["finish"], "task finish started")
    worker.kill()
    before = lines(side_effects)
    assert before[0] == "pick" and before[1].startswith("use-")

    with temporary_engine(store=store_path) as engine:
        result = fn.get_handle(wid).result(timeout=FINISH)
        run = fn.get_run(wid)
    assert engine.errors == []

    # The side effect in ctx.run ran once; the first run's task saw the values the replay
    # returns (the same uuid and random number from the seeded generator, the same pick).
    assert lines(side_effects) == [*before, "finish"]
    assert before[1] == f"use-{result['token']}-{result['picked']}-{result['dice']}"
    recorded = {
        e.payload["operationName"]: e.payload["result"]
        for e in of_type(run.events, "OPERATION_COMPLETED")
    }
    assert recorded == {"current_time": result["started"], "pick": result["picked"]}


# -- 2. timers keep their deadline --------------------------------------------------------


# The recovering engine runs on virtual time (FakeClock) that starts before or after the
# deadline the dead worker recorded and moves only when the test moves it: the recorded
# deadline must fire when virtual time reaches it, while a wait restarted by the replay
# (deadline = recovery + the whole wait) would not fire then at all. No wall-clock slack
# is involved, so a loaded machine can make these tests slower but not wrong. The waits are
# long (LONG_WAIT) so that the worker, however slow, is killed long before its deadline.

LONG_WAIT = 600.0


def virtual_clock(deadline: float, recover: str) -> FakeClock:
    """Virtual time for the recovering engine: half-way through the wait, or past its end."""
    start = deadline - LONG_WAIT / 2 if recover == "mid-wait" else deadline + LONG_WAIT
    return FakeClock(datetime.fromtimestamp(start, UTC))


def reach(clock: FakeClock, deadline: float) -> None:
    """Move virtual time to ``deadline`` (a float sum may land a hair short: never stop there)."""
    clock.advance(max(0.0, deadline - clock.now()))
    while clock.now() < deadline:
        clock.advance(1e-6)


def recover_across(
    store_path: Path, wid: str, deadline: float, recover: str, expected: Any
) -> tuple[FakeClock, float, Any]:
    """Recover ``wid`` on virtual time; return the clock, the virtual time at which the
    recovered engine was let reach the deadline, and the run's final state."""
    clock = virtual_clock(deadline, recover)
    with temporary_engine(store=store_path, clock=clock) as engine:
        wait_until(lambda: fn.get_run(wid, events=False).owner == engine.id, timeout=STARTUP)
        if recover == "mid-wait":
            assert clock.now() < deadline
            reach(clock, deadline)
        let_go_at = clock.now()
        assert fn.get_handle(wid).result(timeout=STARTUP) == expected
        run = fn.get_run(wid)
    assert engine.errors == []
    return clock, let_go_at, run


@pytest.mark.parametrize(
    ("kind", "recover"),
    [
        ("recovery-sleeper", "mid-wait"),
        ("recovery-sleeper", "after-deadline"),
        ("recovery-sync-sleeper", "mid-wait"),
    ],
)
def test_timer_keeps_its_original_deadline_across_a_crash(
    tmp_path: Path,
    store_path: Path,
    side_effects: Path,
    spawn: Callable[..., Worker],
    kind: str,
    recover: str,
) -> None:
    wid = new_id("sleeper")
    worker = spawn(store_path, kind, wid, LONG_WAIT)
    started = worker.wait_for(
        lambda: of_type(events_in(store_path, wid), "TIMER_STARTED"), "the timer started"
    )
    worker.kill()
    fire_at = epoch(started[0].payload["fireAt"])

    # A restarted sleep would be due LONG_WAIT / 2 after the virtual time reached here.
    _, let_go_at, run = recover_across(store_path, wid, fire_at, recover, "woke")

    assert lines(side_effects) == ["before", "after"]
    timer_started = of_type(run.events, "TIMER_STARTED")
    assert len(timer_started) == 1, "the recovered run started a new timer"
    assert epoch(timer_started[0].payload["fireAt"]) == fire_at
    fired = of_type(run.events, "TIMER_FIRED")
    assert len(fired) == 1
    fired_at = fired[0].ts.timestamp()
    assert fired_at >= fire_at, "the timer fired before its deadline"
    # Virtual time stood still at let_go_at: the recorded deadline is the one that fired.
    assert fired_at == pytest.approx(let_go_at, abs=1e-3)
    after = [e for e in of_type(run.events, "TASK_STARTED") if e.seq > fired[0].seq]
    assert len(after) == 1


def test_task_retry_keeps_its_backoff_deadline_across_a_crash(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("retry")
    worker = spawn(store_path, "recovery-retry", wid, "job")
    retry = worker.wait_for(
        lambda: of_type(events_in(store_path, wid), "TASK_RETRY_SCHEDULED"), "a retry is scheduled"
    )
    worker.kill()
    next_at = epoch(retry[0].payload["nextAttemptAt"])
    assert workflows.RETRY_INTERVAL == LONG_WAIT  # virtual_clock starts half-way through it

    _, let_go_at, run = recover_across(store_path, wid, next_at, "mid-wait", "JOB")

    assert lines(side_effects) == ["job#1", "job#2"]
    started = of_type(run.events, "TASK_STARTED")
    assert [e.payload["attempt"] for e in started] == [1, 2]
    second_at = started[1].ts.timestamp()
    assert second_at >= next_at, "the retry ran before its backoff ended"
    assert second_at == pytest.approx(let_go_at, abs=1e-3)


# -- 3. promises can be resolved after the crash -------------------------------------------


@pytest.mark.parametrize("resolve", ["after-recovery", "before-recovery"])
def test_pending_promise_is_resolved_after_a_crash(
    tmp_path: Path,
    store_path: Path,
    side_effects: Path,
    spawn: Callable[..., Worker],
    resolve: str,
) -> None:
    wid = new_id("approval")
    worker = spawn(store_path, "recovery-approval", wid, "o1")
    worker.wait_for(
        lambda: pending_names(store_path, wid) == ["approve"],
        "the promise is pending",
    )
    worker.kill()
    decision = {"approved": True, "by": "alice"}

    if resolve == "before-recovery":  # no engine alive anywhere: the value waits in the store
        fn.resolve_promise(wid, "approve", decision, store=store_path)
    with temporary_engine(store=store_path) as engine:
        if resolve == "after-recovery":
            wait_until(lambda: fn.get_run(wid, events=False).owner == engine.id, timeout=FINISH)
            fn.resolve_promise(wid, "approve", decision)
        result = fn.get_handle(wid).result(timeout=FINISH)
        run = fn.get_run(wid)
        assert fn.pending_promises(wid) == []
    assert engine.errors == []

    assert result == {"prepared": "PREPARE-O1", "decision": decision, "shipped": "SHIP-O1"}
    assert lines(side_effects) == ["prepare-o1", "ship-o1"]
    assert len(of_type(run.events, "PROMISE_CREATED")) == 1
    resolved = of_type(run.events, "PROMISE_RESOLVED")
    assert [e.payload["value"] for e in resolved] == [decision]


def test_cancellation_requested_while_the_owner_is_dead_ends_the_recovered_run(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("approval")
    worker = spawn(store_path, "recovery-approval", wid, "o3")
    worker.wait_for(lambda: pending_names(store_path, wid) == ["approve"], "the promise is pending")
    worker.kill()
    fn.cancel_workflow(wid, store=store_path)  # no engine alive: only the flag is written

    with temporary_engine(store=store_path) as engine:
        with pytest.raises(fn.WorkflowCancelled):
            fn.get_handle(wid).result(timeout=FINISH)
        run = fn.get_run(wid)
    assert engine.errors == []

    assert run.status is RunStatus.CANCELLED
    assert lines(side_effects) == ["prepare-o3"]
    kinds = [e.type.value for e in run.events]
    assert kinds.count("CANCELLATION_REQUESTED") == 1
    assert kinds[-1] == "WORKFLOW_CANCELLED"


@pytest.mark.parametrize("recover", ["mid-wait", "after-deadline"])
def test_promise_timeout_keeps_its_deadline_across_a_crash(
    tmp_path: Path,
    store_path: Path,
    side_effects: Path,
    spawn: Callable[..., Worker],
    recover: str,
) -> None:
    wid = new_id("deadline")
    worker = spawn(store_path, "recovery-deadline", wid, LONG_WAIT)
    worker.wait_for(lambda: pending_names(store_path, wid) == ["answer"], "the promise is pending")
    worker.kill()
    created = of_type(events_in(store_path, wid), "PROMISE_CREATED")
    timeout_at = epoch(created[0].payload["timeoutAt"])

    _, let_go_at, run = recover_across(store_path, wid, timeout_at, recover, "timed out")

    assert lines(side_effects) == ["asked", "gave-up"]
    timed_out = of_type(run.events, "PROMISE_TIMEOUT")
    assert len(timed_out) == 1
    assert timed_out[0].payload["promiseName"] == "answer"
    at = timed_out[0].ts.timestamp()
    assert at >= timeout_at, "the promise timed out before its deadline"
    assert at == pytest.approx(let_go_at, abs=1e-3)


def test_parent_and_child_workflows_both_resume_after_a_crash(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("parent")
    child_wid = f"{wid}/recovery-approval-1"
    worker = spawn(store_path, "recovery-parent", wid, "o2")
    worker.wait_for(lambda: pending_names(store_path, child_wid) == ["approve"], "the child waits")
    worker.kill()

    with temporary_engine(store=store_path) as engine:
        wait_until(lambda: fn.get_run(child_wid, events=False).owner == engine.id, timeout=FINISH)
        fn.resolve_promise(child_wid, "approve", {"ok": True})
        result = fn.get_handle(wid).result(timeout=FINISH)
        parent_run = fn.get_run(wid)
        child_run = fn.get_run(child_wid)
    assert engine.errors == []

    child_result = {"prepared": "PREPARE-O2", "decision": {"ok": True}, "shipped": "SHIP-O2"}
    assert result == {"child": child_result}
    assert child_run.status is RunStatus.COMPLETED
    assert child_run.parent_id == parent_run.execution_id
    assert lines(side_effects) == ["parent-o2", "prepare-o2", "ship-o2"]
    assert len(of_type(parent_run.events, "CHILD_WORKFLOW_INITIATED")) == 1
    assert len(of_type(parent_run.events, "CHILD_WORKFLOW_COMPLETED")) == 1


def test_signals_received_before_a_crash_are_replayed(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("signals")
    worker = spawn(store_path, "recovery-signals", wid, None)
    worker.wait_for(lambda: events_in(store_path, wid), "the run started")
    fn.signal_workflow(wid, "note", "one", store=store_path)
    worker.wait_for(
        lambda: of_type(events_in(store_path, wid), "TASK_COMPLETED"), "the first signal's step"
    )
    worker.kill()

    with temporary_engine(store=store_path) as engine:
        fn.signal_workflow(wid, "note", "two")
        assert fn.get_handle(wid).result(timeout=FINISH) == ["one", "two"]
        run = fn.get_run(wid)
    assert engine.errors == []

    assert lines(side_effects) == ["got-one"]
    received = of_type(run.events, "SIGNAL_RECEIVED")
    assert [e.payload["value"] for e in received] == ["one", "two"]


# -- 4. changed code fails with DeterminismViolation ---------------------------------------
# The worker runs version 1 of each "drift-*" workflow (tests/recovery/worker.py): it
# schedules step "a", then step "b", then waits for promise "go". These are the versions
# this process has when it recovers the run.


@fn.workflow(name="drift-task-kind")
async def drift_task_kind(ctx: WorkflowContext, names: list[str]) -> Any:
    await ctx.schedule(workflows.step, names[0])
    await ctx.schedule(workflows.other_step, names[1])  # was workflows.step
    await ctx.promise("go")
    return "done"


@fn.workflow(name="drift-sync-task-kind")
def drift_sync_task_kind(ctx: fn.SyncWorkflowContext, names: list[str]) -> Any:
    ctx.schedule(workflows.step, names[0])
    ctx.schedule(workflows.other_step, names[1])  # was workflows.step (and async code)
    ctx.promise("go")
    return "done"


@fn.workflow(name="drift-returns-early")
async def drift_returns_early(ctx: WorkflowContext, names: list[str]) -> Any:
    await ctx.schedule(workflows.step, names[0])
    return "early"  # history holds another task and a promise


@fn.workflow(name="drift-sleeps-instead")
async def drift_sleeps_instead(ctx: WorkflowContext, names: list[str]) -> Any:
    await ctx.schedule(workflows.step, names[0])
    await ctx.sleep(0.01)  # history holds a task here
    return "slept"


@fn.workflow(name="drift-promise-name")
async def drift_promise_name(ctx: WorkflowContext, names: list[str]) -> Any:
    for name in names:
        await ctx.schedule(workflows.step, name)
    await ctx.promise("proceed")  # was "go"
    return "done"


@pytest.mark.parametrize(
    ("kind", "step", "issued"),
    [
        ("drift-task-kind", 2, "schedule(task 'recovery-other-step')"),
        ("drift-sync-task-kind", 2, "schedule(task 'recovery-other-step')"),
        ("drift-returns-early", 2, "the workflow returned"),
        ("drift-sleeps-instead", 2, "sleep()"),
        ("drift-promise-name", 3, "promise('proceed')"),
    ],
)
def test_changed_code_fails_the_recovered_run_with_determinism_violation(
    tmp_path: Path,
    store_path: Path,
    side_effects: Path,
    spawn: Callable[..., Worker],
    kind: str,
    step: int,
    issued: str,
) -> None:
    wid = new_id(kind)
    worker = spawn(store_path, kind, wid, ["a", "b"], define="old-drift")
    worker.wait_for(lambda: pending_names(store_path, wid) == ["go"], "the promise is pending")
    worker.kill()
    recorded = {2: "schedule(task 'recovery-step')", 3: "promise('go')"}[step]

    with temporary_engine(store=store_path) as engine:
        with pytest.raises(WorkflowFailed) as failed:
            fn.get_handle(wid).result(timeout=FINISH)
        run = fn.get_run(wid)
    assert engine.errors == []

    assert failed.value.cause["type"] == "DeterminismViolation"
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "DeterminismViolation"
    assert f"at step {step} history recorded {recorded}" in run.error.message
    assert f"but the code now issued {issued}" in run.error.message
    assert of_type(run.events, "WORKFLOW_EXECUTION_FAILED")
    assert lines(side_effects) == ["a", "b"], "replay ran a task instead of failing"


# -- 5. golden histories ---------------------------------------------------------------------


def load_golden(name: str) -> dict[str, Any]:
    history: dict[str, Any] = json.loads((HISTORIES / name).read_text(encoding="utf-8"))
    return history


def insert_golden(store_path: Path | str, history: dict[str, Any]) -> None:
    """Put a recorded history into a fresh store as a run with no owner."""
    events = history["events"]
    execution_id = history["executionId"]
    rows = [
        EventRow(execution_id, e["seq"], e["type"], json.dumps(e["payload"]), epoch(e["ts"]))
        for e in events
    ]

    run = NewRun(
        execution_id=execution_id,
        workflow_id=history["workflowId"],
        kind=history["kind"],
        input_json=json.dumps(history["input"]),
        source_hash=events[0]["payload"].get("sourceHash"),
        owner=None,
        parent_id=None,
        now=epoch(events[0]["ts"]),
    )
    store = open_store(store_path)  # either backend: the run row and its events, one commit
    try:
        store.commit([Change(new_run=run, events=rows)])
    finally:
        store.close()


def test_golden_history_replays_and_completes(store_path: Path, side_effects: Path) -> None:
    golden = load_golden("golden_order_valid.json")
    wid = golden["workflowId"]
    insert_golden(store_path, golden)
    decision = {"approved": True}

    with temporary_engine(store=store_path) as engine:
        fn.resolve_promise(wid, "approve", decision)
        result = fn.get_handle(wid).result(timeout=FINISH)
        run = fn.get_run(wid)
    assert engine.errors == []

    assert result == {
        "reserved": "RESERVE-A1",
        "packed": ["PACK-A1-1", "PACK-A1-2"],
        "decision": decision,
        "shipped": "SHIP-A1",
    }
    assert lines(side_effects) == ["ship-A1"], "replay re-ran recorded tasks"
    recorded = [(e["seq"], e["type"], e["payload"]) for e in golden["events"]]
    replayed = [(e.seq, e.type.value, e.payload) for e in run.events]
    assert replayed[: len(recorded)] == recorded, "replay changed the recorded history"
    assert [kind for _, kind, _ in replayed[len(recorded) :]] == [
        "PROMISE_RESOLVED",
        "TASK_SCHEDULED",
        "TASK_STARTED",
        "TASK_COMPLETED",
        "WORKFLOW_COMPLETED",
    ]
    assert len(of_type(run.events, "TIMER_STARTED")) == 1


def test_golden_history_of_older_code_is_a_determinism_violation(
    store_path: Path, side_effects: Path
) -> None:
    golden = load_golden("golden_order_nondeterministic.json")
    wid = golden["workflowId"]
    insert_golden(store_path, golden)

    with temporary_engine(store=store_path) as engine:
        with pytest.raises(WorkflowFailed):
            fn.get_handle(wid).result(timeout=FINISH)
        run = fn.get_run(wid)
    assert engine.errors == []

    assert run.status is RunStatus.FAILED
    assert run.error is not None
    assert run.error.type == "DeterminismViolation"
    assert (
        "at step 3 history recorded schedule(task 'recovery-step'), "
        "but the code now issued sleep()" in run.error.message
    )
    assert lines(side_effects) == []
    assert len(run.events) == len(golden["events"]) + 1
