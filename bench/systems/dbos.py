"""DBOS Transact (embedded, on SQLite) as a benchmarked system (see ``bench/system.py``).

Only the bench environment has ``dbos`` (``bench/requirements.txt``); flovyn_nb never
depends on it. Each store is a fresh SQLite file (``sqlite:///<file>``).

How DBOS is driven, and why:

- Sync workflows and steps where the workload is sequential or thread-based (step
  overhead, one-step, 500 concurrent): DBOS's own thread pool runs them, and they were
  the faster DBOS variant when we tried both.
- Async workflows for everything that waits (timers, messages, 10 000 waiters, recovery),
  on one asyncio loop in a thread that ``DBOS.launch()`` is called from, as in an async
  (FastAPI-style) DBOS app; sync waiting workflows would pin a thread each.
- A flovyn promise is a DBOS message: the workflow ``recv``s topic ``go``; in-process the
  bench calls ``DBOS.send``, a second process uses ``DBOSClient.send``.
- On SQLite DBOS learns about a message by polling (``notification_listener_polling_
  interval_sec``, default 1.0 s; the setting is recorded in results.json). The bench runs
  the latency workloads at the default and at 0.01 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from dbos import DBOS, DBOSClient, DBOSConfig, SetWorkflowID

from bench.sync import Counter, StartLine

T = TypeVar("T")
APP = "flovyn-bench"
DEFAULT_POLLING = 1.0  # DBOS's own default (dbos/_dbos.py: `... or 1.0`)

_sinks: dict[str, Callable[..., None]] = {}
_line = StartLine()
_arrived = Counter()
_recovered = Counter()
_woke = Counter()


@DBOS.step()
def noop() -> None:
    return None


@DBOS.step()
async def noop_async() -> None:
    return None


@DBOS.step()
async def mark(key: str) -> None:
    _sinks[key]()


@DBOS.workflow()
def steps_workflow(steps: int) -> int:
    for _ in range(steps):
        noop()
    return steps


@DBOS.workflow()
async def steps_async_workflow(steps: int) -> int:
    for _ in range(steps):
        await noop_async()
    return steps


@DBOS.workflow()
def one_step_workflow(value: int) -> int:
    noop()
    return value


@DBOS.workflow()
async def timers_workflow(seconds: float, rounds: int) -> None:
    for _ in range(rounds):
        await _line.wait()
        intended = time.time() + seconds
        await DBOS.sleep_async(seconds)
        _sinks["wake"]("sleep", intended, time.time())
    for r in range(rounds):
        await _line.wait()
        intended = time.time() + seconds
        await DBOS.recv_async(f"t{r}", timeout_seconds=seconds)  # None when it times out
        _sinks["wake"]("timeout", intended, time.time())


@DBOS.workflow()
async def waiter_workflow(key: str) -> None:
    await DBOS.recv_async("go", timeout_seconds=3600)
    await mark(key)


@DBOS.workflow()
async def idle_waiter_workflow() -> None:
    _arrived.add()
    await DBOS.recv_async("go", timeout_seconds=3600)


@DBOS.step()
async def arm() -> float:
    fire_at: float = await _line.wait()
    return fire_at


@DBOS.workflow()
async def recover_workflow() -> None:
    # The deadline comes from the start line once every run has started, recorded as a
    # step; the sleep's end is recorded too, so a recovered run sleeps what is left.
    fire_at = await arm()
    await DBOS.sleep_async(max(fire_at - time.time(), 0.001))
    _woke.add()
    await noop_async()
    _recovered.add()  # DBOS records the outcome right after the function returns


class DBOSSystem:
    import_name: str = "dbos"
    cli_read_command: tuple[str, ...] = ()
    store_name: str = "dbos.sqlite"
    heavy_modules: tuple[str, ...] = ()

    def __init__(self, polling: float | None = None) -> None:
        #: notification_listener_polling_interval_sec; None keeps DBOS's default.
        self.polling = polling
        self.name = "dbos" if polling is None else f"dbos@{polling:g}"
        self.wakeup_interval = polling or DEFAULT_POLLING
        self.slow_wakeup = self.wakeup_interval >= 0.5
        self._url: str | None = None
        self._store: Path | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handles: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        import dbos
        import sqlalchemy

        return {
            "version": getattr(dbos, "__version__", None) or _dist_version("dbos"),
            "sqlalchemy": sqlalchemy.__version__,
            "sqlite": sqlite3.sqlite_version,
            "notification_listener_polling_interval_sec": self.polling or DEFAULT_POLLING,
            "polling_setting": "default" if self.polling is None else "explicit",
        }

    # -- lifecycle -----------------------------------------------------------------------

    def _config(self, store: Path) -> DBOSConfig:
        config: DBOSConfig = {
            "name": APP,
            "system_database_url": f"sqlite:///{store}",
            "application_version": "bench",  # the same in every process (recovery)
            "run_admin_server": False,
            "log_level": "ERROR",
        }
        if self.polling is not None:
            config["notification_listener_polling_interval_sec"] = self.polling
        return config

    def open(self, store: Path) -> None:
        self._store = store
        self._url = f"sqlite:///{store}"
        self._handles = {}
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="dbos-bench-loop", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            instance = DBOS(config=self._config(store))

            async def launch() -> None:
                DBOS.launch()  # from the loop: DBOS runs async work on it

            self._on_loop(launch())
            actual = instance._sys_db._notification_listener_polling_interval_sec
            expected = self.polling or DEFAULT_POLLING
            if actual != expected:
                raise RuntimeError(f"DBOS polls every {actual} s, expected {expected} s")
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        try:
            DBOS.destroy()
        finally:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
            if loop is not None and thread is not None:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=10)
                if not thread.is_alive():
                    loop.close()
            _sinks.clear()

    def stats(self) -> dict[str, Any]:
        return {}

    def _on_loop(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        assert self._loop is not None, "DBOS is not open"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def commit_floor(self, path: Path, samples: int) -> list[float]:
        # The same SQLite settings DBOS's engine uses (default journal and synchronous).
        con = sqlite3.connect(str(path), isolation_level=None)
        try:
            con.execute("CREATE TABLE t (id INTEGER, payload TEXT)")
            timings = []
            for i in range(samples):
                started = time.perf_counter()
                con.execute("INSERT INTO t VALUES (?, ?)", (i, "x"))
                timings.append(time.perf_counter() - started)
            return timings
        finally:
            con.close()

    def _count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Read DBOS's SQLite file directly (read-only) to learn what is durable."""
        assert self._store is not None
        con = sqlite3.connect(f"file:{self._store}?mode=ro", uri=True, timeout=30)
        try:
            return int(con.execute(sql, params).fetchone()[0])
        finally:
            con.close()

    # -- scenarios -----------------------------------------------------------------------

    def run_noop_steps(self, steps: int, *, async_steps: bool, timeout: float) -> None:
        if async_steps:

            async def run() -> int:
                handle = await DBOS.start_workflow_async(steps_async_workflow, steps)
                return await handle.get_result()

            result = self._on_loop(run(), timeout)
        else:
            result = DBOS.start_workflow(steps_workflow, steps).get_result()
        if result != steps:
            raise AssertionError(f"steps workflow returned {result!r}, expected {steps}")

    def run_one_step(self, value: int, *, timeout: float) -> Any:
        result = DBOS.start_workflow(one_step_workflow, value).get_result()
        if result != value:
            raise AssertionError(f"one-step workflow returned {result!r}, expected {value}")
        return result

    def run_concurrent_one_step(self, count: int, *, timeout: float) -> None:
        with ThreadPoolExecutor(max_workers=8) as pool:
            handles = list(
                pool.map(lambda i: DBOS.start_workflow(one_step_workflow, i), range(count))
            )
        for i, handle in enumerate(handles):
            result = handle.get_result()
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

        async def start_all() -> list[Any]:
            return list(
                await asyncio.gather(
                    *(
                        DBOS.start_workflow_async(timers_workflow, seconds, rounds)
                        for _ in range(count)
                    )
                )
            )

        started = time.perf_counter()
        handles = self._on_loop(start_all(), timeout)
        details = {"start_all_s": time.perf_counter() - started}
        for _ in range(2 * rounds):
            _line.release_when(count, deadline)

        async def wait_all() -> None:
            for handle in handles:
                await handle.get_result()

        self._on_loop(wait_all(), max(deadline - time.monotonic(), 0.001))
        return details

    def start_promise_waiter(self, key: str, on_resume: Callable[[], None]) -> None:
        _sinks[key] = on_resume

        async def start() -> Any:
            with SetWorkflowID(key):
                return await DBOS.start_workflow_async(waiter_workflow, key)

        self._handles[key] = self._on_loop(start())

    def wait_promise_pending(self, key: str, *, timeout: float) -> None:
        # recv registers its waiter, then records its timeout as a "DBOS.sleep" step.
        deadline = time.monotonic() + timeout
        while not any(s["function_name"] == "DBOS.sleep" for s in DBOS.list_workflow_steps(key)):
            if time.monotonic() >= deadline:
                raise TimeoutError(f"workflow {key!r} did not reach its recv in {timeout} s")
            time.sleep(0.001)

    def resolve_promise(self, key: str) -> None:
        DBOS.send(key, True, topic="go")

    def wait_done(self, key: str, *, timeout: float) -> None:
        handle = self._handles.pop(key)
        self._on_loop(handle.get_result(), timeout)
        _sinks.pop(key, None)

    # -- worker processes ----------------------------------------------------------------

    def remote_resolver(self, store: Path) -> Callable[[str], None]:
        client = DBOSClient(system_database_url=f"sqlite:///{store}", application_name=APP)

        def resolve(key: str) -> None:
            client.send(key, True, topic="go")

        return resolve

    def start_suspended(self, count: int, *, timeout: float) -> float:
        async def start(i: int) -> None:
            with SetWorkflowID(f"rec-{i}"):
                await DBOS.start_workflow_async(recover_workflow)

        async def start_all() -> None:
            await _in_chunks(start, count)

        deadline = time.monotonic() + timeout
        started = time.monotonic()
        self._on_loop(start_all(), timeout)
        lead = 0.5 + 2 * (time.monotonic() - started)
        fire_at: float = _line.release_when(count, deadline, lambda: time.time() + lead)
        while self._count(_SLEEPS_RECORDED) < count:
            if time.monotonic() >= deadline:
                raise TimeoutError("runs did not all record their sleeps")
            time.sleep(0.01)
        if _woke.value or time.time() >= fire_at:
            raise RuntimeError("timers fired before the process could be killed")
        return fire_at

    def recover(self, store: Path, count: int, *, timeout: float) -> dict[str, float]:
        self.open(store)  # DBOS.launch() recovers this executor's pending workflows
        try:
            engine_started = time.time()
            deadline = time.monotonic() + timeout
            _recovered.wait_for(count, deadline, "recovered runs finished")
            while self._count(_SUCCEEDED) < count:  # their outcomes are durable
                if time.monotonic() >= deadline:
                    raise TimeoutError("recovered runs did not all record their outcome")
                time.sleep(0.001)
            done = time.time()
        finally:
            self.close()
        return {"engine_started": engine_started, "done": done}

    def start_waiters(self, prefix: str, count: int, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        before = _arrived.value

        async def start(i: int) -> None:
            with SetWorkflowID(f"{prefix}{i}"):
                await DBOS.start_workflow_async(idle_waiter_workflow)

        async def start_all() -> None:
            await _in_chunks(start, count)

        self._on_loop(start_all(), timeout)
        _arrived.wait_for(before + count, deadline, "waiters reached their recv")
        while self._count(_SLEEPS_RECORDED) < before + count:  # every recv is set up
            if time.monotonic() >= deadline:
                raise TimeoutError("waiters did not all set up their recv")
            time.sleep(0.01)


_SLEEPS_RECORDED = "SELECT count(*) FROM operation_outputs WHERE function_name = 'DBOS.sleep'"
_SUCCEEDED = "SELECT count(*) FROM workflow_status WHERE status = 'SUCCESS'"


async def _in_chunks(start: Callable[[int], Coroutine[Any, Any, None]], count: int) -> None:
    """Start runs concurrently, 200 at a time (as many requests in flight as a busy app)."""
    for first in range(0, count, 200):
        await asyncio.gather(*(start(i) for i in range(first, min(first + 200, count))))


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    with contextlib.suppress(PackageNotFoundError):
        return version(name)
    return None
