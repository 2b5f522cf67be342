"""flovyn_nb as a benchmarked system (see ``bench/system.py``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import flovyn_nb as fn

# Callbacks the workflows below reach by key: inputs are JSON, so functions cannot be
# passed to a run. Only the bench process runs these workflows, so a module dict is enough.
_sinks: dict[str, Callable[..., None]] = {}


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


class _Gate:
    """Holds runs at a start line until the bench opens it (asyncio: the engine's loop)."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    async def wait(self) -> None:
        self.loop = asyncio.get_running_loop()
        future = self.loop.create_future()
        self.waiting.append(future)
        await future

    def open(self) -> None:
        def release() -> None:
            for future in self.waiting:
                if not future.done():
                    future.set_result(None)

        if self.loop is not None:
            self.loop.call_soon_threadsafe(release)


_gate = _Gate()


@fn.workflow(name="bench.sleeper")
async def sleeper_workflow(ctx: fn.WorkflowContext, args: tuple[float, bool]) -> None:
    seconds, together = args
    if together:
        await ctx.run("gate", _gate.wait)
    # Not replay-safe (wall time in workflow code), which is fine: bench runs never resume.
    intended = time.time() + seconds
    await ctx.sleep(seconds)
    _sinks["wake"](intended, time.time())


@fn.workflow(name="bench.waiter")
async def waiter_workflow(ctx: fn.WorkflowContext, key: str) -> None:
    await ctx.promise("go")
    await ctx.schedule(mark, key)


class FlovynSystem:
    name: str = "flovyn_nb"
    import_name: str = "flovyn_nb"
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
        engine = self._engine
        if engine is None:
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

    def run_sleepers(
        self,
        count: int,
        seconds: float,
        on_wake: Callable[[float, float], None],
        *,
        together: bool,
        timeout: float,
    ) -> dict[str, Any]:
        global _gate
        _gate = _Gate()
        _sinks["wake"] = on_wake
        deadline = time.monotonic() + timeout
        started = time.perf_counter()
        # Callers in several threads let group commit batch the starts.
        with ThreadPoolExecutor(max_workers=8) as pool:
            handles = list(
                pool.map(
                    lambda _: fn.start_workflow(sleeper_workflow, (seconds, together)),
                    range(count),
                )
            )
        details = {"start_all_s": time.perf_counter() - started}
        if together:
            while len(_gate.waiting) < count:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{len(_gate.waiting)} of {count} runs reached the gate")
                time.sleep(0.005)
            details["at_gate_s"] = time.perf_counter() - started
            _gate.open()
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
