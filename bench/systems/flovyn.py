"""flovyn_nb as a benchmarked system (see ``bench/system.py``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flovyn_nb as fn
from bench.sync import Counter, StartLine

# Callbacks the workflows below reach by key: inputs are JSON, so functions cannot be
# passed to a run. Only the bench process runs these workflows, so a module dict is enough.
_sinks: dict[str, Callable[..., None]] = {}
_line = StartLine()
_arrived = Counter()  # waiters that reached their promise (memory workload)
_recovered = Counter()  # recovery runs whose code has finished
_woke = Counter()  # recovery runs whose timer fired
RECOVER_KIND = "bench.recover"


@fn.task(name="bench.noop")
def noop() -> None:
    return None


@fn.task(name="bench.noop_async")
async def noop_async() -> None:
    return None


@fn.task(name="bench.mark")
def mark(key: str) -> None:
    _sinks[key]()


@fn.workflow(name="bench.steps")
async def steps_workflow(ctx: fn.WorkflowContext, steps: int) -> int:
    for _ in range(steps):
        await ctx.schedule(noop)
    return steps


@fn.workflow(name="bench.steps_async")
async def steps_async_workflow(ctx: fn.WorkflowContext, steps: int) -> int:
    for _ in range(steps):
        await ctx.schedule(noop_async)
    return steps


@fn.workflow(name="bench.one_step")
async def one_step_workflow(ctx: fn.WorkflowContext, value: int) -> int:
    await ctx.schedule(noop)
    return value


@fn.workflow(name="bench.timers")
async def timers_workflow(ctx: fn.WorkflowContext, args: tuple[float, int]) -> None:
    # Not replay-safe (wall time and a start line in workflow code), which is fine: bench
    # runs never resume. Each round starts when every run has reached the line.
    seconds, rounds = args
    for _ in range(rounds):
        await _line.wait()
        intended = time.time() + seconds
        await ctx.sleep(seconds)
        _sinks["wake"]("sleep", intended, time.time())
    for r in range(rounds):
        await _line.wait()
        intended = time.time() + seconds
        with contextlib.suppress(fn.PromiseTimeout):
            await ctx.promise(f"t{r}", timeout=seconds)
        _sinks["wake"]("timeout", intended, time.time())


@fn.workflow(name="bench.waiter")
async def waiter_workflow(ctx: fn.WorkflowContext, key: str) -> None:
    await ctx.promise("go")
    await ctx.schedule(mark, key)


@fn.workflow(name=RECOVER_KIND)
async def recover_workflow(ctx: fn.WorkflowContext) -> None:
    # The deadline comes from the start line once every run has started, recorded as a
    # step: a recovered run replays it instead of waiting at the line again.
    fire_at: float = await ctx.run("arm", _line.wait)
    await ctx.sleep_until(datetime.fromtimestamp(fire_at, UTC))
    _woke.add()
    await ctx.schedule(noop)
    _recovered.add()  # the terminal event is submitted right after, in the same loop step


@fn.workflow(name="bench.idle_waiter")
async def idle_waiter_workflow(ctx: fn.WorkflowContext) -> None:
    _arrived.add()
    await ctx.promise("go", timeout=timedelta(hours=1))


class FlovynSystem:
    name: str = "flovyn_nb"
    import_name: str = "flovyn_nb"
    cli_read_command: tuple[str, ...] = ("-m", "flovyn_nb.cli", "runs", "--json", "--store")
    store_name: str = "store.duckdb"
    wakeup_interval: float = 0.02  # Engine(poll_interval=...) default
    slow_wakeup: bool = False
    heavy_modules: tuple[str, ...] = (
        "duckdb",
        "pandas",
        "numpy",
        "anyio",
        "pydantic",
        "jsonschema",
        "IPython",
        "ipywidgets",
        "papermill",
    )

    def __init__(self) -> None:
        self._engine: Any = None
        self._handles: dict[str, fn.WorkflowHandle] = {}

    def settings(self) -> dict[str, Any]:
        import duckdb

        from flovyn_nb.engine.engine import Engine

        defaults = Engine.__init__.__kwdefaults__ or {}
        return {
            "version": fn.__version__,
            "duckdb": duckdb.__version__,
            "engine": {
                k: defaults[k]
                for k in (
                    "linger",
                    "poll_interval",
                    "idle_release",
                    "heartbeat_interval",
                    "tune_gc",
                    "switch_interval",
                )
                if k in defaults
            },
        }

    # -- lifecycle -----------------------------------------------------------------------

    def open(self, store: Path) -> None:
        self._engine = fn.start(store=store)
        self._handles = {}

    def close(self) -> None:
        engine, self._engine = self._engine, None
        fn.stop()
        _sinks.clear()
        if engine is not None and engine.errors:
            raise RuntimeError(f"engine internal errors: {engine.errors}")

    def stats(self) -> dict[str, Any]:
        from flovyn_nb import client

        engine = client.running_engine()  # the writer's and the lease's counters: internals
        if self._engine is None or engine is None:
            return {}
        return {"commits": engine.writer.commits, "store_opens": engine.store.lease.opens}

    def commit_floor(self, path: Path, samples: int) -> list[float]:
        import duckdb

        con = duckdb.connect(str(path))
        try:
            con.execute("CREATE TABLE t (id INTEGER, payload VARCHAR)")
            timings = []
            for i in range(samples):
                started = time.perf_counter()
                con.execute("INSERT INTO t VALUES (?, ?)", [i, "x"])
                timings.append(time.perf_counter() - started)
            return timings
        finally:
            con.close()

    # -- scenarios -----------------------------------------------------------------------

    def run_noop_steps(self, steps: int, *, async_steps: bool, timeout: float) -> None:
        workflow = steps_async_workflow if async_steps else steps_workflow
        result = fn.start_workflow(workflow, steps).result(timeout=timeout)
        if result != steps:
            raise AssertionError(f"steps workflow returned {result!r}, expected {steps}")

    def run_one_step(self, value: int, *, timeout: float) -> Any:
        result = fn.start_workflow(one_step_workflow, value).result(timeout=timeout)
        if result != value:
            raise AssertionError(f"one-step workflow returned {result!r}, expected {value}")
        return result

    def run_concurrent_one_step(self, count: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        # Callers in several threads let group commit batch the starts.
        with ThreadPoolExecutor(max_workers=8) as pool:
            handles = list(
                pool.map(lambda i: fn.start_workflow(one_step_workflow, i), range(count))
            )
        for i, handle in enumerate(handles):
            result = handle.result(timeout=max(deadline - time.monotonic(), 0.001))
            if result != i:
                raise AssertionError(f"one-step workflow returned {result!r}, expected {i}")

    def run_timers(
        self,
        count: int,
        seconds: float,
        rounds: int,
        on_wake: Callable[[str, float, float], None],
        *,
        timeout: float,
    ) -> dict[str, Any]:
        _sinks["wake"] = on_wake
        deadline = time.monotonic() + timeout
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            handles = list(
                pool.map(
                    lambda _: fn.start_workflow(timers_workflow, (seconds, rounds)), range(count)
                )
            )
        details = {"start_all_s": time.perf_counter() - started}
        for _ in range(2 * rounds):
            _line.release_when(count, deadline)
        for handle in handles:
            handle.result(timeout=max(deadline - time.monotonic(), 0.001))
        return details

    def start_promise_waiter(self, key: str, on_resume: Callable[[], None]) -> None:
        _sinks[key] = on_resume
        self._handles[key] = fn.start_workflow(waiter_workflow, key, workflow_id=key)

    def wait_promise_pending(self, key: str, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not fn.pending_promises(key):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"workflow {key!r} did not reach its promise in {timeout} s")
            time.sleep(0.001)

    def resolve_promise(self, key: str) -> None:
        fn.resolve_promise(key, "go", True)

    def wait_done(self, key: str, *, timeout: float) -> None:
        self._handles.pop(key).result(timeout=timeout)
        _sinks.pop(key, None)

    # -- worker processes ----------------------------------------------------------------

    def remote_resolver(self, store: Path) -> Callable[[str], None]:
        if fn.current_engine() is not None:
            raise RuntimeError("the remote resolver must run in a process without an engine")

        def resolve(key: str) -> None:
            fn.resolve_promise(key, "go", True, store=store)

        return resolve

    def start_suspended(self, count: int, *, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda i: fn.start_workflow(recover_workflow, workflow_id=f"rec-{i}"),
                    range(count),
                )
            )
        lead = 0.5 + 2 * (time.monotonic() - started)
        fire_at: float = _line.release_when(count, deadline, lambda: time.time() + lead)
        # A run is WAITING once its TIMER_STARTED is committed (same write; list_runs
        # flushes the writer first).
        while len(fn.list_runs(status="WAITING", kind=RECOVER_KIND)) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError("runs did not all suspend on their timers")
            time.sleep(0.01)
        if _woke.value or time.time() >= fire_at:
            raise RuntimeError("timers fired before the process could be killed")
        return fire_at

    def recover(self, store: Path, count: int, *, timeout: float) -> dict[str, float]:
        engine = fn.start(store=store)  # recovers the runs of every registered workflow
        try:
            engine_started = time.time()
            _recovered.wait_for(count, time.monotonic() + timeout, "recovered runs finished")
            engine.flush()  # their WORKFLOW_COMPLETED events are durable
            done = time.time()
            if engine.errors:
                raise RuntimeError(f"engine internal errors: {engine.errors}")
        finally:
            fn.stop()
        return {"engine_started": engine_started, "done": done}

    def start_waiters(self, prefix: str, count: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        before = _arrived.value
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda i: fn.start_workflow(idle_waiter_workflow, workflow_id=f"{prefix}{i}"),
                    range(count),
                )
            )
        _arrived.wait_for(before + count, deadline, "waiters reached their promise")
        engine = fn.current_engine()
        if engine is not None:
            engine.flush()  # every PROMISE_CREATED committed
