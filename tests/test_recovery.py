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
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import flovyn_nb as fn
from flovyn_nb import WorkflowContext
from flovyn_nb.errors import StoreError, UnknownWorkflow, WorkflowFailed
from flovyn_nb.model import EventInfo, RunStatus
from flovyn_nb.store import Store, ops
from flovyn_nb.store.ops import EventRow
from flovyn_nb.testing import temporary_engine, wait_until
from recovery import workflows

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
    ) -> None:
        self.output = tmp_path / f"worker-{workflow_id}.log"
        env = dict(os.environ)
        env[workflows.HANG_ENV] = ",".join(hang_in)
        command = [sys.executable, str(WORKER), str(store), kind, workflow_id, json.dumps(input)]
        if define is not None:
            command += ["--define", define]
        with self.output.open("wb") as out:
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


def now() -> float:
    return time.time()


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- 1. completed tasks are not executed again ------------------------------------------------


def test_killed_run_resumes_without_rerunning_completed_tasks(
    tmp_path: Path, store_path: Path, side_effects: Path, spawn: Callable[..., Worker]
) -> None:
    wid = new_id("pipeline")
    worker = spawn(store_path, "recovery-pipeline", wid, ["a", "b", "c", "d"], hang_in=("c",))
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
    assert run.owner is None or run.owner == engine.id
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
        engine.flush()
        run = fn.get_run(wid)
        assert run.status is not RunStatus.COMPLETED
        assert run.owner != engine.id
        assert engine.runs == {}

        workflows.define_late_pipeline(kind)  # registering it recovers the run
        assert fn.get_handle(wid).result(timeout=FINISH) == ["A", "B"]
    assert engine.errors == []
    assert lines(side_effects) == ["a", "b", "b"]


# -- 2. timers keep their deadline --------------------------------------------------------


@pytest.mark.parametrize("recover", ["mid-sleep", "after-deadline"])
def test_timer_keeps_its_original_deadline_across_a_crash(
    tmp_path: Path,
    store_path: Path,
    side_effects: Path,
    spawn: Callable[..., Worker],
    recover: str,
) -> None:
    seconds = 2.0
    slack = 0.5  # engine start, replay and the timer's own latency
    wid = new_id("sleeper")
    worker = spawn(store_path, "recovery-sleeper", wid, seconds)
    started = worker.wait_for(
        lambda: of_type(events_in(store_path, wid), "TIMER_STARTED"), "the timer started"
    )
    worker.kill()
    fire_at = epoch(started[0].payload["fireAt"])
    # Recover late enough that restarting the sleep would overshoot the deadline by more
    # than the slack: half-way through the sleep, or after the deadline has passed.
    recover_at = fire_at - seconds / 2 if recover == "mid-sleep" else fire_at + slack
    assert now() < recover_at, "the worker was killed too late to test a sleep in progress"
    wait_until(lambda: now() >= recover_at, timeout=seconds + 5)

    recovered_at = now()
    with temporary_engine(store=store_path) as engine:
        assert fn.get_handle(wid).result(timeout=FINISH) == "woke"
        run = fn.get_run(wid)
    assert engine.errors == []

    assert lines(side_effects) == ["before", "after"]
    timer_started = of_type(run.events, "TIMER_STARTED")
    assert len(timer_started) == 1, "the recovered run started a new timer"
    assert epoch(timer_started[0].payload["fireAt"]) == fire_at
    fired = of_type(run.events, "TIMER_FIRED")
    assert len(fired) == 1
    fired_at = fired[0].ts.timestamp()
    assert fired_at >= fire_at, "the timer fired before its deadline"
    # A restarted sleep would fire at recovered_at + seconds: past this bound by >= slack.
    assert fired_at < max(fire_at, recovered_at) + slack, (
        f"fired {fired_at - fire_at:.3f} s after the original deadline "
        f"(recovered {recovered_at - fire_at:+.3f} s from it)"
    )
    after = [e for e in of_type(run.events, "TASK_STARTED") if e.seq > fired[0].seq]
    assert len(after) == 1


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


def insert_golden(store_path: Path, history: dict[str, Any]) -> None:
    """Put a recorded history into a fresh store as a run with no owner."""
    events = history["events"]
    execution_id = history["executionId"]
    rows = [
        EventRow(execution_id, e["seq"], e["type"], json.dumps(e["payload"]), epoch(e["ts"]))
        for e in events
    ]

    def insert(con: Any) -> None:
        ops.insert_run(
            con,
            execution_id=execution_id,
            workflow_id=history["workflowId"],
            kind=history["kind"],
            input_json=json.dumps(history["input"]),
            source_hash=events[0]["payload"].get("sourceHash"),
            owner=None,
            parent_id=None,
            now=epoch(events[0]["ts"]),
        )
        ops.insert_events(con, rows)

    store = Store(store_path)
    try:
        store.transaction(insert)
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
