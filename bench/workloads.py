"""The workloads: each measures one system on a fresh store and returns its figures.

A workload gets the system, a private temp folder and the sizes, and returns an
:class:`Outcome`: the figures (median and p99) and raw details for results.json. Timing,
repetition and statistics live here so every system is measured the same way; targets
live in ``targets.py`` and are judged by ``run.py`` once every system has run.

Figures come in two kinds. Latencies (start->result, resolve->resume, timer lateness) pool
every sample of every repeat: the median is their p50 and the p99 their p99. Totals (ms per
step of a 1000-step workflow, wall time of 500 concurrent runs, recovery time) are one
value per repeat: median and p99 over the repeats (with 5 repeats the p99 is about the
worst one).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import worker
from bench.system import System


@dataclass(frozen=True)
class Sizes:
    repeats: int = 5
    steps: int = 1000
    busy_steps: int = 100  # steps next to a busy thread
    floor_commits: int = 500
    one_step_runs: int = 200
    concurrent: int = 500
    timers: int = 1000
    sleep_seconds: float = 0.2
    timer_rounds: int = 3
    promise_samples: int = 200  # per mode (in-process, cross-process)
    promise_samples_slow: int = 20  # when the system polls for messages every >= 0.5 s
    recovery_runs: int = 1000
    memory_warmup: int = 200
    memory_step: int = 2000  # waiting runs added per memory step (repeats steps) ...
    memory_step_seconds: float = 14.0  # ... or fewer, if starting them would take longer
    idle_seconds: float = 10.0
    idle_waiters: int = 10
    busy_seconds: float = 5.0
    import_repeats: int = 5
    queue_workers: int = 4  # worker processes serving the queue
    queue_runs: int = 2000  # queued 3-step runs served by them
    queue_repeats: int = 3
    queue_recovery_runs: int = 1000
    timeout: float = 180.0


FULL = Sizes()
SMOKE = Sizes(
    repeats=2,
    steps=20,
    busy_steps=5,
    floor_commits=20,
    one_step_runs=5,
    concurrent=20,
    timers=20,
    sleep_seconds=0.05,
    timer_rounds=1,
    promise_samples=4,
    promise_samples_slow=1,
    recovery_runs=10,
    memory_warmup=10,
    memory_step=20,
    memory_step_seconds=2.0,
    idle_seconds=0.5,
    idle_waiters=2,
    busy_seconds=0.5,
    import_repeats=1,
    queue_workers=2,
    queue_runs=20,
    queue_repeats=1,
    queue_recovery_runs=40,
    timeout=60.0,
)


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    unit: str
    median: float
    p99: float | None = None
    n: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median,
            "p99": self.p99,
            "n": self.n,
        }


@dataclass
class Outcome:
    metrics: list[Metric] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


# -- statistics -------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0..100), linearly interpolated between ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


def metric(name: str, label: str, unit: str, values: list[float]) -> Metric:
    """A figure from samples (or per-repeat values): their median and p99."""
    return Metric(name, label, unit, percentile(values, 50), percentile(values, 99), len(values))


def _ms(seconds: list[float]) -> list[float]:
    return [s * 1000 for s in seconds]


def _record_now(into: list[float]) -> None:
    into.append(time.time())


def _record_wake(into: dict[str, list[float]], kind: str, intended: float, actual: float) -> None:
    into.setdefault(kind, []).append(actual - intended)


class GCPauses:
    """Garbage-collector pauses in this process (they stop every thread: latency spikes)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def summary(self) -> dict[str, Any]:
        full = [p for g, p in self.pauses if g == 2]
        return {
            "collections": len(self.pauses),
            "full_collections": len(full),
            "max_pause_ms": max((p for _, p in self.pauses), default=0) * 1000,
            "max_full_pause_ms": max(full, default=0) * 1000,
            "total_pause_ms": sum(p for _, p in self.pauses) * 1000,
        }


@contextlib.contextmanager
def session(system: System, store: Path) -> Iterator[Outcome]:
    """The system running on a fresh store; its counters land in the outcome's details."""
    outcome = Outcome()
    wall, cpu = time.perf_counter(), time.process_time()
    pauses = GCPauses()
    system.open(store)
    gc.callbacks.append(pauses)
    try:
        yield outcome
        outcome.details["engine"] = system.stats()
        outcome.details["gc"] = pauses.summary()
    except BaseException:
        with contextlib.suppress(Exception):  # keep the workload's own error
            system.close()
        raise
    finally:
        gc.callbacks.remove(pauses)
    system.close()  # raises if the engine recorded internal errors
    # CPU seconds of the whole process (all threads): steadier than wall time when other
    # work shares the machine.
    outcome.details["wall_s"] = time.perf_counter() - wall
    outcome.details["cpu_s"] = time.process_time() - cpu


# -- 1. durable step overhead ------------------------------------------------------------------


def step_overhead(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """One workflow of ``steps`` no-op steps, ``repeats`` times per step flavour; and the
    floor: one raw single-row commit of the system's database, in the same run."""
    floor = system.commit_floor(workdir / f"floor-{system.store_name}", sizes.floor_commits)
    with session(system, workdir / system.store_name) as outcome:
        for async_steps in (False, True):  # warm-up
            system.run_noop_steps(min(sizes.steps, 20), async_steps=async_steps, timeout=60)
        per_step: dict[str, list[float]] = {"sync": [], "async": []}
        cpu_per_step: dict[str, list[float]] = {"sync": [], "async": []}
        for _ in range(sizes.repeats):
            for variant in ("sync", "async"):
                before = system.stats().get("commits")
                started, cpu = time.perf_counter(), time.process_time()
                system.run_noop_steps(
                    sizes.steps, async_steps=variant == "async", timeout=sizes.timeout
                )
                per_step[variant].append((time.perf_counter() - started) / sizes.steps)
                cpu_per_step[variant].append((time.process_time() - cpu) / sizes.steps)
                after = system.stats().get("commits")
                if before is not None and after is not None:
                    outcome.details.setdefault(f"commits_per_step_{variant}", []).append(
                        (after - before) / sizes.steps
                    )
        busy = _busy_steps(system, sizes)
        sync_ms, async_ms, floor_ms = _ms(per_step["sync"]), _ms(per_step["async"]), _ms(floor)
        what = f"{sizes.steps} no-op steps in one workflow"
        outcome.metrics += [
            metric("ms_per_step", f"durable step overhead, def steps ({what})", "ms", sync_ms),
            metric("ms_per_step_async", "durable step overhead, async def steps", "ms", async_ms),
            metric("floor_ms", "raw single-row commit of its database (floor)", "ms", floor_ms),
            metric(
                "ms_per_step_busy",
                f"def step next to a thread running Python ({sizes.busy_steps} steps)",
                "ms",
                _ms(busy),
            ),
            Metric(
                "step_over_floor",
                "def step / raw commit",
                "x",
                statistics.median(sync_ms) / statistics.median(floor_ms),
            ),
        ]
        outcome.details.update(
            steps=sizes.steps,
            repeats_ms_per_step={"sync": sync_ms, "async": async_ms},
            cpu_ms_per_step={k: _ms(v) for k, v in cpu_per_step.items()},
            floor_commit_ms=summary(floor_ms),
        )
    return outcome


def _busy_steps(system: System, sizes: Sizes) -> list[float]:
    """Seconds per def step while another thread of the process runs pure Python (a
    notebook cell crunching numbers): every database call lets go of the GIL and has to
    win it back from that thread."""
    stop = threading.Event()

    def crunch() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    spinner = threading.Thread(target=crunch, name="bench-busy", daemon=True)
    spinner.start()
    try:
        per_step = []
        for _ in range(min(sizes.repeats, 3)):
            started = time.perf_counter()
            system.run_noop_steps(sizes.busy_steps, async_steps=False, timeout=sizes.timeout)
            per_step.append((time.perf_counter() - started) / sizes.busy_steps)
        return per_step
    finally:
        stop.set()
        spinner.join()


# -- 2. one-step workflow, start -> result ------------------------------------------------------


def one_step_workflow(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    with session(system, workdir / system.store_name) as outcome:
        for i in range(min(sizes.one_step_runs, 10)):  # warm-up
            system.run_one_step(i, timeout=60)
        samples: list[float] = []
        for _ in range(sizes.repeats):
            for i in range(sizes.one_step_runs):
                started = time.perf_counter()
                system.run_one_step(i, timeout=sizes.timeout)
                samples.append(time.perf_counter() - started)
        ms = _ms(samples)
        outcome.metrics.append(
            metric(
                "latency_ms",
                f"1-step workflow start->result ({sizes.one_step_runs} sequential)",
                "ms",
                ms,
            )
        )
        outcome.details["latency_ms"] = summary(ms)
    return outcome


# -- 3. concurrent one-step workflows ------------------------------------------------------------


def concurrent_one_step(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    with session(system, workdir / system.store_name) as outcome:
        system.run_concurrent_one_step(min(sizes.concurrent, 20), timeout=60)  # warm-up
        walls: list[float] = []
        for _ in range(sizes.repeats):
            started = time.perf_counter()
            system.run_concurrent_one_step(sizes.concurrent, timeout=sizes.timeout)
            walls.append(time.perf_counter() - started)
        outcome.metrics.append(
            metric(
                "wall_s", f"{sizes.concurrent} concurrent 1-step workflows, wall time", "s", walls
            )
        )
        outcome.details["repeats_s"] = walls
    return outcome


# -- 4. resolve -> resume ----------------------------------------------------------------------


def _resolve_samples(
    system: System,
    samples: int,
    resolve: Callable[[str], dict[str, float] | None],
    prefix: str,
    timeout: float,
    paths: list[dict[str, float]] | None = None,
) -> tuple[list[float], list[float]]:
    """Latency from the resolve call to the next step starting, and the call's duration;
    with a system's ``probe`` (``pg_probe.py``), each sample's path goes to ``paths``."""
    latencies: list[float] = []
    calls: list[float] = []
    probe = getattr(system, "probe", None)
    rng = random.Random(6)
    for i in range(samples + 1):  # the first is warm-up
        key = f"{prefix}-{i}"
        resumed: list[float] = []
        system.start_promise_waiter(key, functools.partial(_record_now, resumed))
        system.wait_promise_pending(key, timeout=timeout)
        # A person resolves at any moment: never in step with the engine's polling.
        time.sleep(rng.uniform(0, system.wakeup_interval))
        if probe is not None:
            probe.clear()
        before = time.time()
        reply = resolve(key)
        returned = time.time()
        if reply is not None:  # resolved in another process: its own clock readings
            before, returned = reply["started"], reply["returned"]
        system.wait_done(key, timeout=timeout)
        if len(resumed) != 1:
            raise AssertionError(f"{key}: the step after the promise ran {len(resumed)} times")
        if i >= 1:
            latencies.append(resumed[0] - before)
            calls.append(returned - before)
            path = None if probe is None else probe.segments(before, returned, resumed[0])
            if path is not None and paths is not None:
                paths.append(path)
    return latencies, calls


def resolve_resume(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """A workflow waits on a promise (DBOS: recv); the bench resolves it from this process
    (the engine's) or from a second process with no engine, the way a CLI does; measured
    from the resolve call to the next step starting in the engine's process."""
    samples = sizes.promise_samples_slow if system.slow_wakeup else sizes.promise_samples
    store = workdir / system.store_name
    with session(system, store) as outcome:
        local, local_calls = _resolve_samples(
            system,
            samples,
            lambda key: system.resolve_promise(key),
            "local",
            sizes.timeout,
        )
        with worker("resolver", system.name, store, workdir=workdir) as resolver:
            resolver.expect(timeout=60)

            def remote(key: str) -> dict[str, float]:
                resolver.send(key)
                return resolver.expect(timeout=sizes.timeout)

            paths: list[dict[str, float]] = []
            cross, cross_calls = _resolve_samples(
                system, samples, remote, "remote", sizes.timeout, paths
            )
            resolver.send("quit")
            resolver.finish()
        local_ms, cross_ms = _ms(local), _ms(cross)
        outcome.metrics += [
            metric("in_process_ms", "resolve->resume, resolved in-process", "ms", local_ms),
            metric(
                "cross_process_ms", "resolve->resume, resolved by another process", "ms", cross_ms
            ),
        ]
        outcome.details.update(
            in_process_ms=summary(local_ms),
            cross_process_ms=summary(cross_ms),
            in_process_call_ms=summary(_ms(local_calls)),
            cross_process_call_ms=summary(_ms(cross_calls)),
        )
        if paths:  # where the cross-process time went (pg_probe.py), per segment
            outcome.details["cross_process_path_ms"] = {
                name: summary([p[name] for p in paths]) for name in paths[0]
            }
            slowest = sorted(paths, key=lambda p: sum(p.values()))[-max(1, len(paths) // 50) :]
            outcome.details["cross_process_slowest_ms"] = slowest
    return outcome


# -- 5. timer lateness -------------------------------------------------------------------------


def timer_lateness(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """``timers`` runs each do ``timer_rounds`` durable sleeps of ``sleep_seconds`` and then
    as many promise waits that time out after ``sleep_seconds``; every round starts for
    all runs at once. Lateness: when the sleep (or timed-out wait) returned to workflow
    code, minus when it was asked for plus its duration."""
    wakes: dict[str, list[float]] = {}
    with session(system, workdir / system.store_name) as outcome:
        started = time.perf_counter()
        info = system.run_timers(
            sizes.timers,
            sizes.sleep_seconds,
            sizes.timer_rounds,
            functools.partial(_record_wake, wakes),
            timeout=sizes.timeout,
        )
        info["total_s"] = time.perf_counter() - started
    expected = sizes.timers * sizes.timer_rounds
    for kind in ("sleep", "timeout"):
        if len(wakes.get(kind, [])) != expected:
            raise AssertionError(f"{len(wakes.get(kind, []))} of {expected} {kind} wake-ups")
    sleep_ms, timeout_ms = _ms(wakes["sleep"]), _ms(wakes["timeout"])
    what = f"{sizes.timers} at once, {sizes.sleep_seconds * 1000:g} ms"
    outcome.metrics += [
        metric("sleep_lateness_ms", f"timer lateness ({what} sleeps)", "ms", sleep_ms),
        metric("timeout_lateness_ms", f"promise timeout lateness ({what})", "ms", timeout_ms),
    ]
    per_round = {
        f"{kind}_p99_ms_by_round": [
            percentile(ms[r * sizes.timers : (r + 1) * sizes.timers], 99)
            for r in range(sizes.timer_rounds)
        ]
        for kind, ms in (("sleep", sleep_ms), ("timeout", timeout_ms))
    }
    outcome.details.update(
        info,
        **per_round,
        rounds=sizes.timer_rounds,
        sleep_lateness_ms=summary(sleep_ms),
        timeout_lateness_ms=summary(timeout_ms),
        woke_early=sum(1 for x in wakes["sleep"] + wakes["timeout"] if x < 0),
    )
    return outcome


# -- 6. recovery -------------------------------------------------------------------------------


def _snapshot(store: Path, into: Path) -> list[Path]:
    """Copy a store and its side files (WAL, journal) as the killed process left them."""
    copied = []
    for path in sorted(store.parent.glob(store.name + "*")):
        if path.suffix in (".bell", ".knock"):
            continue
        target = into / path.name
        shutil.copy2(path, target)
        copied.append(target)
    return copied


def recovery(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """A process with ``recovery_runs`` runs suspended on a timer is killed with SIGKILL;
    once their deadline has passed, a new process starts: time from its spawn (and from
    the moment its workflows are registered) until every run has durably completed.
    Each repeat recovers a fresh copy of the killed process's files."""
    count = sizes.recovery_runs
    store = workdir / "killed" / system.store_name
    store.parent.mkdir()
    with worker("suspend", system.name, store, count, workdir=workdir) as victim:
        ready = victim.expect(timeout=sizes.timeout)
        victim.kill9()
    fire_at = float(ready["fire_at"])
    wait = fire_at - time.time()
    if wait > 0:  # the deadline passes while no process runs
        time.sleep(wait + 0.05)
    from_start: list[float] = []
    after_registration: list[float] = []
    runs = []
    for i in range(sizes.repeats):
        copy_dir = workdir / f"copy-{i}"
        copy_dir.mkdir()
        _snapshot(store, copy_dir)
        with worker(
            "recover", system.name, copy_dir / system.store_name, count, workdir=workdir
        ) as w:
            times = w.expect(timeout=sizes.timeout)
            w.finish()
        from_start.append(times["done"] - w.spawned)
        after_registration.append(times["done"] - times["registered"])
        runs.append({k: v - w.spawned for k, v in times.items()})
    return Outcome(
        metrics=[
            metric(
                "from_start_s",
                f"recovery of {count} overdue runs after kill -9, from process start",
                "s",
                from_start,
            ),
            metric(
                "after_registration_s",
                "recovery, after the workflows are registered",
                "s",
                after_registration,
            ),
        ],
        details={
            "runs": count,
            "overdue_by_s": time.time() - fire_at,
            "suspended_at_s": ready["at"] - victim.spawned,
            "repeats_since_spawn_s": runs,
        },
    )


# -- 7. memory ---------------------------------------------------------------------------------


def memory(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """RSS growth of a fresh process per run waiting on a promise: after ``memory_warmup``
    waiting runs, ``repeats`` more steps of ``memory_step`` runs each (fewer per step when
    the warm-up shows that starting them would take over ``memory_step_seconds``: both
    systems get the same time)."""
    store = workdir / system.store_name
    args = (sizes.memory_warmup, sizes.memory_step, sizes.repeats, sizes.memory_step_seconds)
    with worker("memory", system.name, store, *args, workdir=workdir) as w:
        readings = [w.expect(timeout=sizes.timeout * 3) for _ in range(sizes.repeats + 1)]
        w.expect(timeout=sizes.timeout)  # stopped
        w.finish()
    per_step = [
        (b["rss_kb"] - a["rss_kb"]) / (b["waiting"] - a["waiting"])
        for a, b in itertools.pairwise(readings)
    ]
    total = readings[-1]["waiting"] - readings[0]["waiting"]
    overall = (readings[-1]["rss_kb"] - readings[0]["rss_kb"]) / total
    # RSS grows in allocator-sized jumps, so single steps are noisy: the figure is the
    # growth over all steps per run; its p99 is the worst step.
    return Outcome(
        metrics=[
            Metric(
                "kb_per_run",
                "memory per run waiting on a promise (RSS growth)",
                "KB",
                overall,
                percentile(per_step, 99),
                len(per_step),
            ),
        ],
        details={"readings": readings, "kb_per_step": per_step, "runs": total},
    )


# -- 8. idle CPU -------------------------------------------------------------------------------


def idle_cpu(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """CPU (utime + stime from /proc) of an engine process with ``idle_waiters`` runs
    waiting on promises and nothing else to do, over ``idle_seconds`` in 5 windows."""
    store = workdir / system.store_name
    with worker("idle", system.name, store, sizes.idle_waiters, workdir=workdir) as w:
        w.expect(timeout=sizes.timeout)
        windows = []
        window = sizes.idle_seconds / 5
        start_cpu, start = w.cpu_seconds(), time.monotonic()
        last_cpu, last = start_cpu, start
        for i in range(1, 6):
            time.sleep(max(start + i * window - time.monotonic(), 0))  # a measuring window
            cpu, now = w.cpu_seconds(), time.monotonic()
            windows.append(100 * (cpu - last_cpu) / (now - last))
            last_cpu, last = cpu, now
        overall = 100 * (last_cpu - start_cpu) / (last - start)
        w.send("stop")
        w.expect(timeout=60)
        w.finish()
    return Outcome(
        metrics=[
            Metric(
                "cpu_percent",
                f"idle engine CPU over {sizes.idle_seconds:g} s ({sizes.idle_waiters} runs waiting)",
                "%",
                overall,
                max(windows),
                1,
            )
        ],
        details={"windows_percent": windows},
    )


# -- 9. lock hand-over (flovyn_nb: two processes on one store) ----------------------------------


def lock_handover(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """Two processes run 1-step workflows back to back on one store file for
    ``busy_seconds``; every time one of them has to (re)open the file, how long it waits
    for the other to hand it over."""
    store = workdir / system.store_name
    with (
        worker("busy", system.name, store, sizes.busy_seconds, workdir=workdir) as a,
        worker("busy", system.name, store, sizes.busy_seconds, workdir=workdir) as b,
    ):
        a.expect(timeout=sizes.timeout)
        b.expect(timeout=sizes.timeout)
        a.send("go")
        b.send("go")
        results = [a.expect(timeout=sizes.timeout * 2), b.expect(timeout=sizes.timeout * 2)]
        a.finish()
        b.finish()
    waits = _ms([x for r in results for x in r["opens"]])
    latencies = _ms([x for r in results for x in r["latencies"]])
    if not waits:
        raise AssertionError("no hand-over happened: the processes never waited for each other")
    return Outcome(
        metrics=[
            metric("handover_ms", "lock hand-over between two busy processes", "ms", waits),
            metric("busy_run_ms", "1-step workflow while sharing the file", "ms", latencies),
        ],
        details={
            "runs_per_process": [r["runs"] for r in results],
            "handovers_per_process": [len(r["opens"]) for r in results],
            "handover_ms": summary(waits),
            "run_ms": summary(latencies),
        },
    )


# -- 10. import time ---------------------------------------------------------------------------

_IMPORT_PROBE = """
import json, sys, time
heavy = {heavy!r}
before = set(sys.modules)
started = time.perf_counter()
import {module}
elapsed = time.perf_counter() - started
print(json.dumps({{
    "seconds": elapsed,
    "heavy": [m for m in heavy if m in sys.modules and m not in before],
    "modules": len(set(sys.modules) - before),
}}))
"""


def import_time(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    code = _IMPORT_PROBE.format(module=system.import_name, heavy=list(system.heavy_modules))
    probes = []
    for _ in range(sizes.import_repeats):
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        probes.append(json.loads(done.stdout.strip().splitlines()[-1]))
    heavy = sorted({m for p in probes for m in p["heavy"]})
    label = "heavy modules on import" + (f" ({', '.join(heavy)})" if heavy else " (none)")
    metrics = [
        metric(
            "import_ms",
            "cold import of the package (fresh interpreter)",
            "ms",
            [p["seconds"] * 1000 for p in probes],
        ),
        Metric("heavy_modules", label, "", len(heavy)),
    ]
    if system.cli_read_command:
        metrics.append(
            metric(
                "cli_runs_ms",
                "CLI read command, start to answer",
                "ms",
                _cli_runs(system, workdir, sizes),
            )
        )
    return Outcome(
        metrics=metrics,
        details={
            "repeats_ms": [p["seconds"] * 1000 for p in probes],
            "heavy_imported": heavy,
            "modules_imported": probes[-1]["modules"],
        },
    )


def store_open_close(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """flovyn_nb's store alone: open/close and checkpoint costs (``store_workloads.py``)."""
    from bench.store_workloads import open_close

    return open_close(system, workdir, sizes)


def queue_throughput(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """PostgreSQL only: 4 worker processes on queued 3-step runs (queue_throughput.py)."""
    from bench.queue_throughput import queue_throughput as measure

    return measure(system, workdir, sizes)


def queue_recovery(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """PostgreSQL only: kill -9 of one of 4 queue workers (queue_throughput.py)."""
    from bench.queue_throughput import queue_recovery as measure

    return measure(system, workdir, sizes)


def stream_tokens(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """flovyn_nb's durable streams: tokens per second (``stream_workloads.py``)."""
    from bench.stream_workloads import stream_tokens as measure

    return measure(system, workdir, sizes)


def _cli_runs(system: System, workdir: Path, sizes: Sizes) -> list[float]:
    """Milliseconds from spawning the CLI's read command to its exit, on a fresh store (a
    user's ``flovyn-nb runs`` in a terminal)."""
    store = workdir / f"cli-{system.store_name}"
    with session(system, store):
        pass  # creates the store
    timings = []
    for _ in range(sizes.import_repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, *system.cli_read_command, str(store)],
            cwd=workdir,
            capture_output=True,
            timeout=60,
            check=True,
        )
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def dashboard_at_scale(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """flovyn_nb's dashboard over 10,000 runs (``dashboard_workload.py``)."""
    from bench.dashboard_workload import dashboard_at_scale as measure

    return measure(system, workdir, sizes)


Workload = Callable[[System, Path, Sizes], Outcome]

WORKLOADS: dict[str, Workload] = {
    "step_overhead": step_overhead,
    "one_step_workflow": one_step_workflow,
    "concurrent_one_step": concurrent_one_step,
    "resolve_resume": resolve_resume,
    "timer_lateness": timer_lateness,
    "recovery": recovery,
    "memory": memory,
    "idle_cpu": idle_cpu,
    "lock_handover": lock_handover,
    "import_time": import_time,
    "store_open_close": store_open_close,
    "stream_tokens": stream_tokens,
    "dashboard_at_scale": dashboard_at_scale,
    "queue_throughput": queue_throughput,
    "queue_recovery": queue_recovery,
}
#: Workloads whose figures depend on how often DBOS polls: run at both polling settings.
#: (DBOS's timers and recv timeouts wait on asyncio, not on the poller; at 0.01 s the
#: poller's query per waiting recv, 1000 of them, starved the run, which did not finish.)
LATENCY = ("one_step_workflow", "resolve_resume", "idle_cpu")
#: Workloads only one system has a use for.
ONLY = {
    "lock_handover": ("flovyn_nb",),
    "store_open_close": ("flovyn_nb",),
    "stream_tokens": ("flovyn_nb",),
    "dashboard_at_scale": ("flovyn_nb",),
    "queue_throughput": ("flovyn_nb@pg", "dbos@pg"),
    "queue_recovery": ("flovyn_nb@pg", "dbos@pg"),
}
