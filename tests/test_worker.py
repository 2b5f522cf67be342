"""``flovyn-nb worker`` in real processes, on both backends: runs started by a notebook
process on a queue it does not serve are executed by worker processes, each run once and
each step once; SIGTERM stops a worker gracefully; a worker killed mid-run is taken over;
two workers racing fire each schedule slot once.

``FLOVYN_NB_WORKER_RUNS`` sets the number of runs of the big test (default: 1,000 on
PostgreSQL, 50 on DuckDB, whose single file is handed from process to process at every
commit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb import cron as sched_runs
from flovyn_nb.testing import temporary_engine, wait_until

PROCS = Path(__file__).parent / "worker_procs"
sys.path.insert(0, str(PROCS))

import sched_defs
import worker_defs
from worker_proc import Worker


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every test here runs on a DuckDB file and on a PostgreSQL database."""
    return store_target


def _runs(store: Path | str) -> int:
    """How many runs the big test starts on ``store``."""
    default = "50" if isinstance(store, Path) else "1000"
    return int(os.environ.get("FLOVYN_NB_WORKER_RUNS", default))


@pytest.fixture
def effects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "effects"
    folder.mkdir()
    monkeypatch.setenv("FLOVYN_TEST_EFFECTS", str(folder))
    return folder


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _run_status(store: Path | str, workflow_id: str) -> str:
    return fn.get_run(workflow_id, events=False, store=store).status.value


@pytest.mark.slow
@pytest.mark.timeout(900)  # DuckDB hands the file from process to process at every commit
def test_three_workers_execute_runs_a_notebook_queued_each_once(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    runs = _runs(store_path)
    with temporary_engine(store=store_path):  # the notebook: serves "default" only
        for i in range(runs):
            fn.start_workflow(worker_defs.job, f"r{i}", workflow_id=f"r{i}", queue="q")
        assert fn.get_run("r0", events=False).owner is None  # nothing here serves q
        began = time.monotonic()
        # At most 40 % of the runs each: all three workers take part.
        share = str(max(1, runs * 2 // 5))
        workers += [
            Worker(store_path, effects, "--queue", "q", "--concurrency", share) for _ in range(3)
        ]
        wait_until(
            lambda: len(fn.list_runs(status="COMPLETED", kind="wk-job")) == runs,
            timeout=max(300, runs * 3),
            interval=0.2,
            message="every run completed",
        )
        elapsed = time.monotonic() - began
        assert fn.get_handle("r7").result(timeout=10) == ["r7:0", "r7:1", "r7:2"]
    backend = "DuckDB" if isinstance(store_path, Path) else "PostgreSQL"
    print(f"{runs} runs by 3 workers on {backend} in {elapsed:.2f} s: {runs / elapsed:.1f} runs/s")
    for worker in workers:
        assert worker.stop() == 0, worker.lines
        assert any("stopped; its runs went back" in line for line in worker.lines)
    claims = [run for worker in workers for run in worker.claimed()]
    assert sorted(claims) == sorted(f"r{i}" for i in range(runs)), "each run claimed once"
    for i in range(runs):
        for n in range(3):
            assert len(_lines(effects / f"r{i}-{n}")) == 1, f"step {n} of r{i}"
    assert len(list(effects.iterdir())) == 3 * runs, "no step of another run"
    shares = [len(worker.claimed()) for worker in workers]
    print("claims per worker:", shares)
    assert all(shares), "every worker took part"


def test_sigterm_lets_the_step_in_flight_finish_then_hands_the_run_over(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        first = Worker(store_path, effects, "--queue", "q")
        workers.append(first)
        first.wait_for("serving .*wk-gate")
        fn.start_workflow(worker_defs.gate_flow, "g", workflow_id="g", queue="q")
        wait_until(lambda: _lines(effects / "g-gated-started"), timeout=60)
        first.popen.send_signal(signal.SIGTERM)
        first.wait_for("received SIGTERM")
        (effects / "g.gate").touch()  # the step in flight may finish now
        assert first.stop() == 0, first.lines
        assert _lines(effects / "g-gated-done") == [str(first.popen.pid)]
        second = Worker(store_path, effects, "--queue", "q")
        workers.append(second)
        assert fn.get_handle("g").result(timeout=60) == "opened"
    second.wait_for("claimed run g")
    assert second.claimed() == ["g"]
    assert _lines(effects / "g-2") == [str(second.popen.pid)]  # only the rest ran there
    for name in ("g-0", "g-gated-started", "g-gated-done"):
        assert _lines(effects / name) == [str(first.popen.pid)], name


def test_a_worker_killed_mid_run_is_taken_over_without_repeating_a_completed_step(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    with temporary_engine(store=store_path):
        workers += [Worker(store_path, effects, "--queue", "q") for _ in range(2)]
        for worker in workers:
            worker.wait_for("serving .*wk-gate")
        fn.start_workflow(worker_defs.gate_flow, "k", workflow_id="k", queue="q")
        [pid] = wait_until(lambda: _lines(effects / "k-gated-started"), timeout=60)
        victim = next(w for w in workers if str(w.popen.pid) == pid)
        survivor = next(w for w in workers if w is not victim)
        victim.popen.send_signal(signal.SIGKILL)
        victim.popen.wait(timeout=60)
        # The survivor takes the run over and starts the step that was in flight again.
        wait_until(lambda: len(_lines(effects / "k-gated-started")) == 2, timeout=60)
        (effects / "k.gate").touch()
        assert fn.get_handle("k").result(timeout=60) == "opened"
    assert survivor.claimed() == ["k"]
    assert _lines(effects / "k-0") == [pid], "the completed first step did not run again"
    assert _lines(effects / "k-gated-started") == [pid, str(survivor.popen.pid)]
    assert _lines(effects / "k-gated-done") == [str(survivor.popen.pid)]
    assert _lines(effects / "k-2") == [str(survivor.popen.pid)]
    assert survivor.stop() == 0


def test_a_resolve_from_the_cli_wakes_a_run_a_worker_holds(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    """The run waits in a worker process; ``flovyn-nb resolve`` in a third process wakes
    it there (the bell across processes: no engine in this one), and the rest runs once."""
    with temporary_engine(store=store_path):
        fn.start_workflow(worker_defs.await_flow, "a", workflow_id="a", queue="q")
    worker = Worker(store_path, effects, "--queue", "q")
    workers.append(worker)
    wait_until(lambda: fn.pending_promises("a", store=store_path), timeout=60,
               message=f"the run never waited on its promise: {worker.lines}")  # fmt: skip
    resolved = subprocess.run(
        [sys.executable, "-m", "flovyn_nb.cli", "resolve", "a", "go", "--value", '"yes"',
         "--store", str(store_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert resolved.returncode == 0, resolved.stderr
    wait_until(lambda: _run_status(store_path, "a") == "COMPLETED", timeout=60,
               message=f"the resolve never woke the run: {worker.lines}")  # fmt: skip
    assert fn.get_run("a", store=store_path).output == "yes"
    assert worker.claimed() == ["a"]
    assert _lines(effects / "a-1") == [str(worker.popen.pid)]
    assert worker.stop() == 0


def test_two_workers_racing_fire_each_missed_slot_once(
    store_path: Path | str, effects: Path, workers: list[Worker]
) -> None:
    """Both workers start with six slots of a schedule missed (catch-up "all") and race
    to fire them: each slot's run starts once and runs once."""
    with temporary_engine(store=store_path):
        pass  # the store exists; this process runs no engine from here on
    fn.schedule(sched_defs.ping, cron="*/10 * * * *", input=7, name="race", catch_up="all",
                store=store_path)  # fmt: skip
    now = time.time()
    first = now - now % 600 - 3600  # a slot an hour ago
    # DuckDB keeps naive UTC timestamps, PostgreSQL TIMESTAMPTZ.
    stamp = "to_timestamp(?)::TIMESTAMP" if isinstance(store_path, Path) else "to_timestamp(?)"
    fn.sql(
        f"UPDATE schedules SET next_fire = {stamp} WHERE name = 'race'",
        [first],
        store=store_path,
        write=True,
    )
    workers += [Worker(store_path, effects, source=PROCS / "sched_defs.py") for _ in range(2)]
    wait_until(
        lambda: (
            (s := client.list_schedules(store=store_path)[0]).last_slot is not None
            and s.last_slot.timestamp() >= first + 3600
        ),
        timeout=120,
    )
    runs = [r for r in fn.list_runs(store=store_path) if r.workflow_id.startswith("sched-")]
    slots = sorted(r.workflow_id for r in runs)
    assert len(slots) >= 7 and len(set(slots)) == len(slots)
    assert slots[0] == sched_runs.run_id("race", first)
    wait_until(
        lambda: all(
            r.status.value == "COMPLETED"
            for r in fn.list_runs(store=store_path)
            if r.workflow_id.startswith("sched-")
        ),
        timeout=120,
    )
    for workflow_id in slots:
        assert len(_lines(effects / workflow_id)) == 1, workflow_id
    for worker in workers:
        assert worker.stop() == 0
