"""Tasks and child workflows on a queue the run's engine does not serve
(``ctx.schedule(task, x, queue="gpu")``, ``ctx.schedule_workflow(wf, x, queue="gpu")``),
executed by ``flovyn-nb worker --queue gpu`` processes, on both backends.

The test process plays the notebook: its engine serves "default" only. Every task appends
its PID to a side-effect file, so each test counts where and how often a step really ran.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.store import open_store
from flovyn_nb.testing import temporary_engine, wait_until

PROCS = Path(__file__).parent / "taskq_procs"
DEFS = PROCS / "taskq_defs.py"
sys.path[:0] = [str(PROCS), str(Path(__file__).parent / "worker_procs")]

import taskq_defs as defs
from worker_proc import Worker


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


@pytest.fixture
def effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "effects"
    folder.mkdir()
    monkeypatch.setenv("FLOVYN_TEST_EFFECTS", str(folder))
    return folder


def _gpu_worker(store: Path | str, effects: Path, source: Path = DEFS) -> Worker:
    """A ``flovyn-nb worker --queue gpu`` process serving ``source``."""
    return Worker(store, effects, "--queue", "gpu", source=source)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _start(store: Path | str, effects: Path, workers: list[Worker], n: int = 1) -> list[Worker]:
    new = [_gpu_worker(store, effects) for _ in range(n)]
    workers += new
    for worker in new:
        worker.wait_for(r"serving .*tq-parent")
    return new


def test_a_task_on_a_queue_served_elsewhere_runs_there_once_with_a_typed_result(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path) as engine:
        [worker] = _start(store_path, effects, workers)
        handle = fn.start_workflow(defs.flow, "a", workflow_id="tq-a")
        assert handle.result(timeout=60) == "Total:42"
        assert engine.errors == []
        run = fn.get_run("tq-a")
        scheduled = [e for e in run.events if e.type == "TASK_SCHEDULED"]
        assert [e.payload.get("queue") for e in scheduled] == ["gpu"]
    assert _lines(effects / "add-a") == [worker.pid]  # once, in the worker
    assert worker.stop() == 0, worker.lines


def test_a_failing_remote_task_is_task_failed_in_the_workflow_after_its_retries(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        [worker] = _start(store_path, effects, workers)
        handle = fn.start_workflow(defs.fails, "f", workflow_id="tq-f")
        assert handle.result(timeout=60) == "TaskFailed ValueError 2: no gpu for f"
        events = [e.type for e in fn.get_run("tq-f").events]
        assert "TASK_FAILED" in events
    assert _lines(effects / "fail-f") == [worker.pid, worker.pid]  # the policy's 2 attempts


def test_a_worker_killed_in_a_remote_task_is_replaced_after_its_lease(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        _start(store_path, effects, workers, n=2)
        handle = fn.start_workflow(defs.gated_flow, "k", workflow_id="tq-k")
        [pid] = wait_until(lambda: _lines(effects / "gated-k-started"), timeout=60)
        victim = next(w for w in workers if w.pid == pid)
        survivor = next(w for w in workers if w is not victim)
        victim.popen.send_signal(signal.SIGKILL)
        victim.popen.wait(timeout=60)
        wait_until(lambda: len(_lines(effects / "gated-k-started")) == 2, timeout=60)
        (effects / "k.gate").touch()
        wait_until(lambda: fn.pending_promises("tq-k"), timeout=60)
        fn.resolve_promise("tq-k", "go", True)
        assert handle.result(timeout=60) == "opened k 2"
    assert _lines(effects / "gated-k-started") == [pid, survivor.pid]
    assert _lines(effects / "gated-k-done") == [survivor.pid]


def test_the_owner_restarting_waits_for_the_remote_task_and_never_runs_it_itself(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        [worker] = _start(store_path, effects, workers)
        fn.start_workflow(defs.gated_flow, "r", workflow_id="tq-r")
        wait_until(lambda: _lines(effects / "gated-r-started"), timeout=60)
    # The owner is gone while the task runs; its next engine replays the run.
    (effects / "r.gate").touch()
    with temporary_engine(store=store_path):
        wait_until(lambda: fn.pending_promises("tq-r"), timeout=60)
    # Both remote tasks completed; a third engine replays both outcomes from history.
    with temporary_engine(store=store_path):
        fn.resolve_promise("tq-r", "go", True)
        assert fn.get_handle("tq-r").result(timeout=60) == "opened r 2"
        types = [e.type for e in fn.get_run("tq-r").events]
    assert types.count("TASK_COMPLETED") == 2 and types.count("TASK_SCHEDULED") == 2
    assert _lines(effects / "gated-r-started") == [worker.pid]
    assert _lines(effects / "add-r") == [worker.pid]


def test_a_child_workflow_on_a_queue_is_executed_by_the_engine_serving_it(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        [worker] = _start(store_path, effects, workers)
        handle = fn.start_workflow(defs.parent, 4, workflow_id="tq-p")
        assert handle.result(timeout=60) == "child gave 5"
        child = fn.get_run("tq-p-child", events=False)
        assert child.queue == "gpu"
        initiated = [e for e in fn.get_run("tq-p").events if e.type == "CHILD_WORKFLOW_INITIATED"]
        assert initiated[0].payload["queue"] == "gpu"
    assert _lines(effects / "child") == [worker.pid]


def test_cancelling_a_parent_cancels_its_child_in_the_process_executing_it(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        [worker] = _start(store_path, effects, workers)
        handle = fn.start_workflow(defs.parent_waits, workflow_id="tq-pw")
        wait_until(lambda: fn.pending_promises("tq-cw"), timeout=60)  # the worker runs it
        fn.cancel_workflow("tq-pw")
        # As with a child executed here, the parent sees its child end cancelled.
        with pytest.raises(fn.errors.FlovynError, match="cancelled"):
            handle.result(timeout=60)
        child = fn.get_handle("tq-cw")
        with pytest.raises(fn.errors.WorkflowCancelled, match="parent cancelled"):
            child.result(timeout=60)
    assert worker.stop() == 0, worker.lines


def test_cancelling_the_run_closes_its_remote_task_and_its_late_outcome_is_ignored(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        [worker] = _start(store_path, effects, workers)
        handle = fn.start_workflow(defs.gated_flow, "c", workflow_id="tq-c")
        wait_until(lambda: _lines(effects / "gated-c-started"), timeout=60)
        fn.cancel_workflow("tq-c", reason="not needed")
        with pytest.raises(fn.errors.WorkflowCancelled):
            handle.result(timeout=60)
        events = fn.get_run("tq-c").events
        [task_id] = [e.payload["taskExecutionId"] for e in events if e.type == "TASK_SCHEDULED"]
        assert "TASK_CANCELLED" in [e.type for e in events]
        store = open_store(store_path)
        try:
            assert [row.status for row in store.queued_tasks([task_id])] == ["CANCELLED"]
            (effects / "c.gate").touch()  # the attempt's thread ends; its outcome is refused
            wait_until(lambda: _lines(effects / "gated-c-done"), timeout=60)
            # The worker still serves: a later run's task completes there.
            assert fn.start_workflow(defs.flow, "c2").result(timeout=60) == "Total:42"
            assert [row.status for row in store.queued_tasks([task_id])] == ["CANCELLED"]
        finally:
            store.close()
    assert _lines(effects / "add-c") == []  # the run went no further
    assert worker.stop() == 0, worker.lines


def test_a_task_only_a_tasks_only_worker_defines_is_scheduled_by_name(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        worker = _gpu_worker(store_path, effects, PROCS / "taskq_gpu_tasks.py")
        workers.append(worker)
        worker.wait_for(r"serving tasks tq-gpu-only on queue\(s\) gpu")
        handle = fn.start_workflow(defs.by_name, 4, workflow_id="tq-n")
        assert handle.result(timeout=60) == {"n": 40, "pid": worker.popen.pid}
    assert worker.stop() == 0, worker.lines


@pytest.mark.parametrize("queue", [" gpu", "", 5])
def test_a_bad_queue_is_one_invalid_input_and_records_nothing(
    store_path: Path | str, queue: object
) -> None:
    with temporary_engine(store=store_path):
        handle = fn.start_workflow(defs.bad_queue, queue, workflow_id="tq-bad")
        message = handle.result(timeout=60)
        assert message.startswith("a queue name must be a non-empty string"), message
        assert "\n" not in message
        types = [e.type for e in fn.get_run("tq-bad").events]
        assert "TASK_SCHEDULED" not in types


def test_the_mock_context_takes_the_same_queue_options() -> None:
    """A workflow tested with flovyn_nb.testing runs unchanged with ``queue=``."""
    import asyncio

    from flovyn_nb.testing import MockWorkflowContext

    ctx = MockWorkflowContext()
    ctx.mock_task_result("tq-add", defs.Total(value=3))
    ctx.mock_workflow_result("tq-child", 9)

    async def body() -> tuple[object, object, object]:
        a = await ctx.schedule_async(
            defs.add, {"n": 2}, retry_policy=fn.RetryPolicy(max_attempts=2), queue="gpu"
        )
        b = await ctx.schedule_workflow_async(defs.child, 8, workflow_id="c", queue="gpu")
        c = await ctx.schedule_workflow(defs.child, 8, timeout=5, queue="gpu")
        return a, b, c

    assert asyncio.run(body()) == (defs.Total(value=3), 9, 9)
