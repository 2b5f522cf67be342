"""The workloads: each measures one system on a fresh store and returns metrics.

A workload gets the system, a private temp folder and the sizes, and returns a
:class:`Outcome`: the figures with their targets (upper bounds; PASS/MISS is judged
against them) and raw details for results.json. Timing, repetition and statistics live
here so every system is measured the same way.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.system import System


@dataclass(frozen=True)
class Sizes:
    steps: int = 1000
    step_repeats: int = 3
    floor_commits: int = 500
    one_step_runs: int = 200
    sleepers: int = 1000
    sleep_seconds: float = 0.2
    promise_samples: int = 200
    import_repeats: int = 5
    timeout: float = 120.0


FULL = Sizes()
SMOKE = Sizes(
    steps=20,
    step_repeats=3,
    floor_commits=20,
    one_step_runs=10,
    sleepers=20,
    sleep_seconds=0.1,
    promise_samples=10,
    import_repeats=2,
    timeout=30.0,
)


@dataclass(frozen=True)
class Metric:
    name: str
    label: str
    value: float
    unit: str
    target: float | None = None  # the figure should be at most this

    @property
    def status(self) -> str:
        if self.target is None:
            return ""
        return "PASS" if self.value <= self.target else "MISS"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "unit": self.unit,
            "target": self.target,
            "status": self.status or None,
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


def summary_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "min": min(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "mean": statistics.fmean(ms),
    }


def _record_now(into: list[float]) -> None:
    into.append(time.time())


def _record_pair(into: list[tuple[float, float]], intended: float, actual: float) -> None:
    into.append((intended, actual))


@contextlib.contextmanager
def session(system: System, store: Path) -> Iterator[Outcome]:
    """The system running on a fresh store; its counters land in the outcome's details."""
    outcome = Outcome()
    wall, cpu = time.perf_counter(), time.process_time()
    system.open(store)
    try:
        yield outcome
        outcome.details["engine"] = system.stats()
    except BaseException:
        with contextlib.suppress(Exception):  # keep the workload's own error
            system.close()
        raise
    system.close()  # raises if the engine recorded internal errors
    # CPU seconds of the whole process (all threads): steadier than wall time when other
    # work shares the machine.
    outcome.details["wall_s"] = time.perf_counter() - wall
    outcome.details["cpu_s"] = time.process_time() - cpu


# -- 1. durable step overhead ------------------------------------------------------------------


def step_overhead(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    floor = system.commit_floor(workdir / "floor.db", sizes.floor_commits)
    floor_ms = statistics.median(floor) * 1000
    with session(system, workdir / "steps.store") as outcome:
        system.run_noop_steps(min(sizes.steps, 20), async_steps=False, timeout=sizes.timeout)
        per_step: dict[str, list[float]] = {"sync": [], "async": []}
        cpu_per_step: dict[str, list[float]] = {"sync": [], "async": []}
        for _ in range(sizes.step_repeats):
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
        sync_ms = statistics.median(per_step["sync"]) * 1000
        async_ms = statistics.median(per_step["async"]) * 1000
        outcome.metrics += [
            Metric("ms_per_step", "step overhead (def task)", sync_ms, "ms/step", 1.5),
            Metric("ms_per_step_async", "step overhead (async def task)", async_ms, "ms/step", 1.5),
            Metric("floor_ms_per_commit", "raw single-row commit (floor)", floor_ms, "ms"),
            Metric("steps_over_floor", "step / raw commit", sync_ms / floor_ms, "x"),
        ]
        outcome.details.update(
            steps=sizes.steps,
            repeats_ms_per_step={k: [v * 1000 for v in vs] for k, vs in per_step.items()},
            cpu_ms_per_step={k: [v * 1000 for v in vs] for k, vs in cpu_per_step.items()},
            floor_commit_ms=summary_ms(floor),
        )
    return outcome


# -- 2. one-step workflow, start -> result ------------------------------------------------------


def one_step_workflow(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    with session(system, workdir / "one_step.store") as outcome:
        for i in range(min(sizes.one_step_runs, 10)):  # warm-up
            system.run_one_step(i, timeout=sizes.timeout)
        samples = []
        for i in range(sizes.one_step_runs):
            started = time.perf_counter()
            system.run_one_step(i, timeout=sizes.timeout)
            samples.append(time.perf_counter() - started)
        stats = summary_ms(samples)
        outcome.metrics += [
            Metric("p50_ms", "1-step workflow start->result p50", stats["p50"], "ms", 4.0),
            Metric("p99_ms", "1-step workflow start->result p99", stats["p99"], "ms"),
        ]
        outcome.details["latency_ms"] = stats
    return outcome


# -- 3. timer lateness -------------------------------------------------------------------------


def _peak_overlap(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def timer_lateness(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """Lateness of ``sleep(sleep_seconds)`` in ``sleepers`` runs: first all sleeping at once
    (they wait at a start line until every run has started), then started back to back."""
    outcome = Outcome()
    for together in (True, False):
        variant = "together" if together else "staggered"
        wakes: list[tuple[float, float]] = []
        with session(system, workdir / f"timers-{variant}.store") as part:
            started = time.perf_counter()
            info = system.run_sleepers(
                sizes.sleepers,
                sizes.sleep_seconds,
                functools.partial(_record_pair, wakes),
                together=together,
                timeout=sizes.timeout,
            )
            info["total_s"] = time.perf_counter() - started
        if len(wakes) != sizes.sleepers:
            raise AssertionError(f"{len(wakes)} of {sizes.sleepers} sleepers woke up")
        stats = summary_ms([actual - intended for intended, actual in wakes])
        peak = _peak_overlap([(i - sizes.sleep_seconds, a) for i, a in wakes])
        what = f"{sizes.sleepers} runs, {variant}"
        suffix = "" if together else "_staggered"
        outcome.metrics += [
            Metric(f"p50_ms{suffix}", f"timer lateness p50 ({what})", stats["p50"], "ms"),
            Metric(f"p99_ms{suffix}", f"timer lateness p99 ({what})", stats["p99"], "ms", 20),
        ]
        outcome.details[variant] = {
            "lateness_ms": stats,
            "peak_sleeping_at_once": peak,
            "woke_early": sum(1 for intended, actual in wakes if actual < intended),
            **info,
            **part.details,
        }
    return outcome


# -- 4. resolve -> resume ----------------------------------------------------------------------


def resolve_resume(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    with session(system, workdir / "promises.store") as outcome:
        latencies: list[float] = []
        resolve_calls: list[float] = []
        for i in range(sizes.promise_samples + 5):  # the first 5 are warm-up
            key = f"waiter-{i}"
            resumed: list[float] = []
            system.start_promise_waiter(key, functools.partial(_record_now, resumed))
            system.wait_promise_pending(key, timeout=sizes.timeout)
            before = time.time()
            system.resolve_promise(key)
            returned = time.time()
            system.wait_done(key, timeout=sizes.timeout)
            if len(resumed) != 1:
                raise AssertionError(f"{key}: the step after the promise ran {len(resumed)} times")
            if i >= 5:
                latencies.append(resumed[0] - before)
                resolve_calls.append(returned - before)
        stats = summary_ms(latencies)
        outcome.metrics += [
            Metric("p50_ms", "resolve->next step p50", stats["p50"], "ms"),
            Metric("p99_ms", "resolve->next step p99", stats["p99"], "ms", 20),
        ]
        outcome.details.update(latency_ms=stats, resolve_call_ms=summary_ms(resolve_calls))
    return outcome


# -- 5. import time ----------------------------------------------------------------------------

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
    ms = statistics.median(p["seconds"] for p in probes) * 1000
    heavy = sorted({m for p in probes for m in p["heavy"]})
    label = "heavy modules on import" + (f" ({', '.join(heavy)})" if heavy else " (none)")
    return Outcome(
        metrics=[
            Metric("import_ms", f"import {system.import_name}", ms, "ms", 300),
            Metric("heavy_modules", label, len(heavy), "", 0),
        ],
        details={
            "repeats_ms": [p["seconds"] * 1000 for p in probes],
            "heavy_imported": heavy,
            "modules_imported": probes[-1]["modules"],
        },
    )


Workload = Callable[[System, Path, Sizes], Outcome]

WORKLOADS: dict[str, Workload] = {
    "step_overhead": step_overhead,
    "one_step_workflow": one_step_workflow,
    "timer_lateness": timer_lateness,
    "resolve_resume": resolve_resume,
    "import_time": import_time,
}
