"""The bench's second processes: ``python -m bench.worker ROLE SYSTEM STORE [ARGS...]``.

A worker talks JSON lines: it prints one object per line on stdout and reads commands
from stdin, one per line. Roles:

- ``resolver``: no engine; for each key read from stdin, resolve that workflow's promise
  the way a CLI or another kernel does and print when the call started and returned.
- ``idle N``: start the engine with N runs waiting on promises, print ``ready``, and sit
  idle until stdin says ``stop`` (the bench reads this process's CPU time meanwhile).
- ``suspend COUNT``: start COUNT runs sleeping until a common deadline, print ``ready`` (and
  the deadline) once their timers are durable, then wait to be killed with SIGKILL.
- ``recover COUNT``: import the system's workflows (registering them), start the engine on
  a store left by a killed process, and print timestamps once all COUNT runs completed.
- ``memory WARMUP STEP STEPS SECONDS``: RSS after WARMUP waiting runs, then after each
  further STEP waiting runs (fewer if the warm-up says STEP would take over SECONDS),
  STEPS times.
- ``busy SECONDS`` (flovyn_nb): run one-step workflows back to back for SECONDS while
  another process does the same on the same store, timing every wait for the store file.
"""

from __future__ import annotations

import gc
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

STARTED = time.time()  # before the system's imports (the process's own start is earlier)

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def emit(**data: Any) -> None:
    print(json.dumps(data), flush=True)


def rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def main(argv: list[str]) -> int:
    role, system_name, store_text, *args = argv
    store = Path(store_text)
    from bench.systems import MODULES, SYSTEMS

    importlib.import_module(MODULES[system_name])  # registers the system's workflows
    registered = time.time()
    system = SYSTEMS[system_name]()

    if role == "resolver":
        resolve = system.remote_resolver(store)
        emit(ready=True)
        for line in sys.stdin:
            key = line.strip()
            if not key or key == "quit":
                break
            started = time.time()
            resolve(key)
            emit(key=key, started=started, returned=time.time())
        return 0

    if role == "idle":
        system.open(store)
        try:
            system.start_waiters("idle-", int(args[0]), timeout=120)
            emit(ready=True)
            sys.stdin.readline()  # "stop"
        finally:
            system.close()
        emit(stopped=True)
        return 0

    if role == "suspend":
        system.open(store)
        fire_at = system.start_suspended(int(args[0]), timeout=120)
        emit(ready=True, at=time.time(), fire_at=fire_at)
        sys.stdin.readline()  # never answered: the bench kills this process
        system.close()
        return 0

    if role == "recover":
        times = system.recover(store, int(args[0]), timeout=120)
        emit(started=STARTED, registered=registered, **times)
        return 0

    if role == "memory":
        warmup, step, steps, budget = int(args[0]), int(args[1]), int(args[2]), float(args[3])
        system.open(store)
        try:
            started = time.perf_counter()
            system.start_waiters("warm-", warmup, timeout=300)
            per_run = (time.perf_counter() - started) / warmup
            step = max(min(step, int(budget / per_run)), 1)
            gc.collect()
            emit(waiting=warmup, rss_kb=rss_kb())
            for i in range(steps):
                started = time.perf_counter()
                system.start_waiters(f"m{i}-", step, timeout=300)
                took = time.perf_counter() - started
                gc.collect()
                emit(waiting=warmup + (i + 1) * step, rss_kb=rss_kb(), start_s=took)
        finally:
            system.close()
        emit(stopped=True)
        return 0

    if role == "busy":
        return busy(system, store, float(args[0]))

    raise SystemExit(f"unknown role {role!r}")


def busy(system: Any, store: Path, seconds: float) -> int:
    """One of two processes writing continuously to one flovyn store: how long does each
    wait for the file? (Every open of the store is timed: the lease's retry-and-knock loop
    is the whole wait for the other process to hand the file over.)"""
    from flovyn_nb.store.duckdb.lease import Lease

    waits: list[float] = []
    original = Lease._open

    def timed_open(self: Lease) -> Any:
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            waits.append(time.perf_counter() - started)

    Lease._open = timed_open  # type: ignore[method-assign]
    system.open(store)
    emit(ready=True)
    sys.stdin.readline()  # "go": both processes start together
    waits.clear()
    latencies = []
    try:
        end = time.monotonic() + seconds
        i = 0
        while time.monotonic() < end:
            started = time.perf_counter()
            system.run_one_step(i, timeout=60)
            latencies.append(time.perf_counter() - started)
            i += 1
    finally:
        system.close()
        Lease._open = original  # type: ignore[method-assign]
    emit(runs=len(latencies), latencies=latencies, opens=waits)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
