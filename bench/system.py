"""What a benchmarked system must offer so the workloads can measure it.

The workloads (``workloads.py``) own timing, repetition and statistics; a system only
expresses each scenario in its own API: a workflow of no-op steps, a one-step workflow,
durable sleeps and promise timeouts, a promise (DBOS: a message) that the bench resolves,
runs suspended on an overdue timer, and runs waiting on promises. flovyn_nb implements
this in ``systems/flovyn.py``, DBOS Transact in ``systems/dbos.py``.

Callbacks passed in (``on_wake``, ``on_resume``) are plain Python functions that record
``time.time()`` in the bench process, so the bench measures from outside the engine
without trusting the engine's own timestamps. Scenarios that need a second process (a
resolver with no engine, a process to kill -9, a fresh process for memory) run the same
system in ``python -m bench.worker`` (see ``worker.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

#: ``on_wake(kind, intended, actual)``: a timer ("sleep") or promise timeout ("timeout")
#: that should have fired at ``intended`` returned to workflow code at ``actual``.
WakeCallback = Callable[[str, float, float], None]


class System(Protocol):
    #: Name used in the table and in results.json ("flovyn_nb", "dbos", "dbos@0.01").
    name: str
    #: Module whose cold import is timed (``import <import_name>`` in a fresh interpreter).
    import_name: str
    #: Modules that importing ``import_name`` should not load eagerly.
    heavy_modules: tuple[str, ...]
    #: A read command of the system's CLI, run as ``python <args...> <store>`` on a fresh
    #: store (its start-up is timed with the import); empty when the system has none.
    cli_read_command: tuple[str, ...]
    #: File name of a store in a workload's folder.
    store_name: str
    #: How often the engine looks for news from other processes (flovyn_nb: a stat of the
    #: doorbell; DBOS on SQLite: a query per waiting run). Resolves are jittered over this
    #: so samples do not lock onto the polling phase.
    wakeup_interval: float
    #: Wakes waiting runs on a slow polling tick (>= 0.5 s): latency workloads take fewer
    #: samples to stay within the time budget.
    slow_wakeup: bool

    def settings(self) -> dict[str, Any]:
        """Versions and the settings that shape the figures (e.g. DBOS's polling interval)."""
        ...

    def open(self, store: Path) -> None:
        """Start the engine on a fresh store at ``store`` (a file path in a temp dir)."""
        ...

    def close(self) -> None:
        """Stop the engine; raise if it recorded internal errors while running."""
        ...

    def stats(self) -> dict[str, Any]:
        """Engine counters (commits, file opens, ...) for the details in results.json."""
        ...

    def commit_floor(self, path: Path, samples: int) -> list[float]:
        """Seconds per raw single-row autocommit INSERT into a fresh file of the system's
        database: the physical floor a durable step cannot go below."""
        ...

    # -- in the bench process, on an open store ------------------------------------------

    def run_noop_steps(self, steps: int, *, async_steps: bool, timeout: float) -> None:
        """One workflow running ``steps`` no-op durable steps one after another (``def``
        steps, or ``async def`` ones when ``async_steps``)."""
        ...

    def run_one_step(self, value: int, *, timeout: float) -> Any:
        """Start a workflow with one no-op step and block for its result."""
        ...

    def run_concurrent_one_step(self, count: int, *, timeout: float) -> None:
        """Start ``count`` one-step workflows at once (from 8 threads) and wait for all."""
        ...

    def run_timers(
        self,
        count: int,
        seconds: float,
        rounds: int,
        on_wake: WakeCallback,
        *,
        timeout: float,
    ) -> dict[str, Any]:
        """Start ``count`` runs that each do ``rounds`` durable ``seconds`` sleeps and then
        ``rounds`` promise waits that time out after ``seconds``, reporting every wake-up to
        ``on_wake``. Every round starts at a start line that opens once all ``count`` runs
        have reached it, so the ``count`` timers of a round run at the same moment."""
        ...

    def start_promise_waiter(self, key: str, on_resume: Callable[[], None]) -> None:
        """Start a workflow (id ``key``) that waits on a promise and then runs a step that
        calls ``on_resume()`` first thing."""
        ...

    def wait_promise_pending(self, key: str, *, timeout: float) -> None:
        """Return once the workflow ``key`` is durably blocked on its promise."""
        ...

    def resolve_promise(self, key: str) -> None:
        """Resolve the promise of workflow ``key`` through the public API, in-process."""
        ...

    def wait_done(self, key: str, *, timeout: float) -> None:
        """Block until workflow ``key`` has finished (raise if it failed)."""
        ...

    # -- in a worker process (python -m bench.worker) --------------------------------------

    def remote_resolver(self, store: Path) -> Callable[[str], None]:
        """For a second process with no engine: a function resolving workflow ``key``'s
        promise in the store, the way a CLI or another kernel would."""
        ...

    def start_suspended(self, count: int, *, timeout: float) -> float:
        """Start ``count`` runs (ids ``rec-0`` ...) that, once all have started, sleep
        durably until a common deadline a little later and then run one step. Return the
        deadline (epoch seconds) once every run's timer is durable and none has fired."""
        ...

    def recover(self, store: Path, count: int, *, timeout: float) -> dict[str, float]:
        """In a fresh process whose workflows are registered: start the engine on the store
        left by a killed process and return once all ``count`` runs from
        :meth:`start_suspended` have durably completed. Returns timestamps
        (``engine_started``) for the details."""
        ...

    def start_waiters(self, prefix: str, count: int, *, timeout: float) -> None:
        """Start ``count`` runs waiting on a promise (with a long timeout); return once all
        are blocked on it."""
        ...
