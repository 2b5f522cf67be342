"""Queue throughput on PostgreSQL (issue 17): 4 worker processes on N queued 3-step runs.

For ``flovyn_nb@pg`` and ``dbos@pg`` only, each repeat on a fresh database of the bench's
server (``systems/postgres.py``):

1. the bench process, with no engine, enqueues N runs of a workflow of three no-op steps
   on queue ``bench`` (flovyn_nb: ``fn.start_workflow(..., queue="bench", store=URL)``;
   DBOS: ``DBOSClient.enqueue``), 8 threads at a time, so nothing executes them yet;
2. it spawns 4 worker processes at once (flovyn_nb: ``flovyn-nb worker bench.queue_flovyn
   --store URL --queue bench``; DBOS: ``python -m bench.queue_dbos URL``, a launched DBOS
   app that registered the queue), each system at its defaults (no concurrency limits);
3. it counts the completed runs in the database every 20 ms until all N are done.

Figures: workflows/s from the workers' spawn to the last completion (start-up included:
a fresh worker's imports and launch are part of serving a backlog), and from 10 % to 90 %
of the runs completed (the steady rate once the workers serve, without the tail).
Afterwards every run must have completed exactly once (flovyn_nb: each step's TASK_COMPLETED once per run).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg

from bench.system import System
from bench.workloads import Outcome, Sizes, metric

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "bench"
POLL = 0.02  # seconds between counts of the completed runs

_DONE = {
    "flovyn_nb@pg": "SELECT count(*) FROM workflow_executions WHERE status = 'COMPLETED'",
    "dbos@pg": "SELECT count(*) FROM dbos.workflow_status WHERE status = 'SUCCESS'",
}


def queue_throughput(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    from bench.systems.postgres import fresh_database

    if system.name not in _DONE:
        raise RuntimeError(f"queue_throughput runs on flovyn_nb@pg and dbos@pg, not {system.name}")
    outcome = Outcome()
    total, steady, repeats = [], [], []
    for r in range(sizes.queue_repeats):
        url = fresh_database(workdir / f"store-{r}.url")
        enqueued = _enqueue(system.name, url, sizes.queue_runs)
        run = _serve(system.name, url, sizes.queue_runs, workdir / f"r{r}", sizes)
        _verify(system.name, url, sizes.queue_runs)
        run["enqueue_s"] = enqueued
        repeats.append(run)
        total.append(sizes.queue_runs / (run["done"] - run["spawned"]))
        # 10 % to 90 % of the runs: the rate once every worker serves, before the tail.
        steady.append(0.8 * sizes.queue_runs / max(run["p90"] - run["p10"], POLL))
    what = f"{sizes.queue_workers} workers, {sizes.queue_runs} queued 3-step runs"
    outcome.metrics += [
        metric("workflows_per_s", f"throughput ({what}), from spawn", "wf/s", total),
        metric("workflows_per_s_steady", "throughput, 10 % to 90 % completed", "wf/s", steady),
    ]
    outcome.details["repeats"] = repeats
    if system.name == "dbos@pg":
        from bench.queue_dbos import WORKER_CONCURRENCY

        outcome.details["dbos_worker_concurrency"] = WORKER_CONCURRENCY
    return outcome


def queue_recovery(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """4 workers on queued 3-step runs; once 30 % completed, ``kill -9`` one worker and
    spawn a replacement. The figure: seconds from the kill until every run that was in
    flight at that moment (taken by some worker, not finished) has completed."""
    from bench.systems.postgres import fresh_database

    if system.name not in _DONE:
        raise RuntimeError(f"queue_recovery runs on flovyn_nb@pg and dbos@pg, not {system.name}")
    outcome = Outcome()
    seconds, repeats = [], []
    count = sizes.queue_recovery_runs
    for r in range(sizes.queue_repeats):
        url = fresh_database(workdir / f"store-{r}.url")
        _enqueue(system.name, url, count)
        run = _serve(system.name, url, count, workdir / f"r{r}", sizes, kill_at=0.3)
        _verify(system.name, url, count)
        repeats.append(run)
        if "recovered" in run:
            seconds.append(run["recovered"] - run["killed"])
    outcome.details["repeats"] = repeats
    if not seconds:  # tiny (smoke) sizes: every run may be done by the first count
        outcome.details["note"] = "no run was in flight at the kill: nothing to recover"
        return outcome
    what = f"kill -9 of 1 of {sizes.queue_workers} workers at 30 % of {count} runs"
    label = f"in-flight runs all done after {what}"
    outcome.metrics.append(metric("recovered_s", label, "s", seconds))
    return outcome


def _enqueue(name: str, url: str, count: int) -> float:
    """Seconds to enqueue ``count`` runs from this process (which has no engine)."""
    started = time.perf_counter()
    if name == "flovyn_nb@pg":
        import flovyn_nb as fn
        from bench.queue_flovyn import three_steps
        from flovyn_nb.store import open_store

        if fn.current_engine() is not None:
            raise RuntimeError("the producer must run without an engine")
        open_store(url).close()  # the tables, as a first engine would create them
        started = time.perf_counter()

        def put(i: int) -> None:
            fn.start_workflow(three_steps, i, workflow_id=f"q-{i}", queue=QUEUE, store=url)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, range(count)))
    else:
        from dbos import DBOSClient

        from bench.queue_dbos import APP, VERSION, WORKER_CONCURRENCY

        # The system tables, as `dbos migrate` (or a first launched app) creates them.
        dbos_cli = Path(sys.executable).with_name("dbos")
        subprocess.run([dbos_cli, "migrate", "-s", url], check=True, capture_output=True)
        started = time.perf_counter()
        client = DBOSClient(system_database_url=url, application_name=APP)
        try:
            client.register_queue(QUEUE, worker_concurrency=WORKER_CONCURRENCY)

            def enqueue(i: int) -> None:
                options: Any = {
                    "queue_name": QUEUE,
                    "workflow_name": "three_steps",
                    "workflow_id": f"q-{i}",
                    "app_version": VERSION,
                }
                client.enqueue(options, i)

            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(enqueue, range(count)))
        finally:
            client.destroy()
    return time.perf_counter() - started


def _command(name: str, url: str) -> list[str]:
    if name == "flovyn_nb@pg":
        worker = ["-m", "flovyn_nb.cli", "worker", "bench.queue_flovyn"]
        return [sys.executable, *worker, "--store", url, "--queue", QUEUE]
    return [sys.executable, "-m", "bench.queue_dbos", url]


def _serve(
    name: str, url: str, count: int, logs: Path, sizes: Sizes, kill_at: float | None = None
) -> dict[str, Any]:
    """Spawn the workers, wait until ``count`` runs completed, stop the workers. With
    ``kill_at``, SIGKILL the first worker once that share of the runs completed and spawn
    a replacement at once (DBOS recovers a dead executor's runs only when one launches)."""
    logs.mkdir(parents=True)
    query = _DONE[name]
    procs: list[subprocess.Popen[str]] = []
    files: list[Any] = []

    def spawn() -> None:
        files.append((logs / f"worker-{len(procs)}.log").open("w"))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        procs.append(
            subprocess.Popen(
                _command(name, url),
                cwd=ROOT,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=files[-1],
                text=True,
            )
        )

    with psycopg.connect(url, autocommit=True) as con:
        if _count(con, query):
            raise RuntimeError("runs completed before any worker started")
        spawned = time.time()
        try:
            for _ in range(sizes.queue_workers):
                spawn()
            marks = _wait(name, con, count, procs, spawn, logs, spawned + sizes.timeout, kill_at)
        finally:
            _stop(procs)
            for f in files:
                f.close()
    return {"spawned": spawned, **marks}


def _wait(
    name: str,
    con: psycopg.Connection[Any],
    count: int,
    procs: list[subprocess.Popen[str]],
    spawn: Any,
    logs: Path,
    deadline: float,
    kill_at: float | None,
) -> dict[str, Any]:
    """When the first run, 10 %, 90 % and all of the ``count`` runs had completed (and,
    with ``kill_at``, when the kill happened and its in-flight runs had all completed)."""
    marks: dict[str, Any] = {}
    in_flight: list[str] = []
    while True:
        done = _count(con, _DONE[name])
        now = time.time()
        for mark, share in (("first", 1 / count), ("p10", 0.1), ("p90", 0.9), ("done", 1.0)):
            if done >= share * count and mark not in marks:
                marks[mark] = now
        if kill_at is not None and "killed" not in marks and done >= kill_at * count:
            procs[0].kill()
            procs[0].wait(timeout=10)
            marks["killed"] = time.time()
            in_flight = [r[0] for r in con.execute(_IN_FLIGHT[name]).fetchall()]
            marks["in_flight"] = len(in_flight)
            # Asked even when nothing was in flight (tiny sizes), so a smoke run checks it.
            marks["left_at_kill"] = _left(con, name, in_flight)
            spawn()
        if in_flight and "recovered" not in marks and _left(con, name, in_flight) == 0:
            marks["recovered"] = time.time()
        if done >= count and (kill_at is None or "recovered" in marks or not in_flight):
            return marks
        dead = [p for p in procs[1 if "killed" in marks else 0 :] if p.poll() is not None]
        if dead or now >= deadline:
            why = f"worker {dead[0].pid} exited with {dead[0].returncode}" if dead else "timeout"
            tail = "".join(p.read_text()[-1500:] for p in sorted(logs.glob("*.log")))
            raise RuntimeError(f"{done}/{count} runs completed ({why}); worker logs:\n{tail}")
        time.sleep(POLL)


# Runs a worker had taken and not finished, and how many of those are still not done.
_IN_FLIGHT = {
    "flovyn_nb@pg": "SELECT workflow_id FROM workflow_executions"
    " WHERE owner IS NOT NULL AND status IN ('RUNNING', 'WAITING', 'PENDING')",
    "dbos@pg": "SELECT workflow_uuid FROM dbos.workflow_status WHERE status = 'PENDING'",
}
_LEFT = {
    "flovyn_nb@pg": "SELECT count(*) FROM workflow_executions"
    " WHERE workflow_id = ANY(%s) AND status <> 'COMPLETED'",
    "dbos@pg": "SELECT count(*) FROM dbos.workflow_status"
    " WHERE workflow_uuid = ANY(%s) AND status <> 'SUCCESS'",
}


def _left(con: psycopg.Connection[Any], name: str, runs: list[str]) -> int:
    row = con.execute(_LEFT[name], [runs]).fetchone()
    return -1 if row is None else int(row[0])


def _count(con: psycopg.Connection[Any], query: str) -> int:
    try:
        row = con.execute(query).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0


def _stop(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:  # flovyn-nb worker stops on SIGTERM, the DBOS worker when stdin closes
        with contextlib.suppress(OSError):
            assert p.stdin is not None
            p.stdin.close()
        if p.poll() is None:
            with contextlib.suppress(OSError):
                p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)


def _verify(name: str, url: str, count: int) -> None:
    """Every run completed once (and, for flovyn_nb, each of its steps once)."""
    with psycopg.connect(url, autocommit=True) as con:
        if name == "flovyn_nb@pg":
            rows = con.execute(
                "SELECT count(*) FROM events WHERE type = 'TASK_COMPLETED'"
            ).fetchone()
            steps = int(rows[0]) if rows else -1
            if steps != 3 * count:
                raise AssertionError(f"{steps} steps completed, expected {3 * count}")
        done = _count(con, _DONE[name])
        if done != count:
            raise AssertionError(f"{done} runs completed, expected {count}")
