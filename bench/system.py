"""What a benchmarked system must offer so the workloads can measure it.

The workloads (``workloads.py``) own timing, repetition and statistics; a system only
expresses each scenario in its own API: a workflow of no-op steps, a one-step workflow, a
durable sleep, a promise (or event) that the bench resolves. flovyn_nb implements this in
``systems/flovyn.py``; another engine (DBOS) gets its own module with the same methods.

Callbacks passed in (``on_wake``, ``on_resume``) are plain Python functions that append
``time.time()`` to lists in the bench process, so the bench measures from outside the
engine without trusting the engine's own timestamps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol


class System(Protocol):
    #: Name used in the table and in results.json.
    name: str
    #: Module whose cold import is timed (``import <import_name>`` in a fresh interpreter).
    import_name: str
    #: Modules that importing ``import_name`` should not load eagerly.
    heavy_modules: tuple[str, ...]

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

    def run_noop_steps(self, steps: int, *, async_steps: bool, timeout: float) -> None:
        """One workflow running ``steps`` no-op durable steps one after another (``def``
        steps, or ``async def`` ones when ``async_steps``)."""
        ...

    def run_one_step(self, value: int, *, timeout: float) -> Any:
        """Start a workflow with one no-op step and block for its result."""
        ...

    def run_sleepers(
        self,
        count: int,
        seconds: float,
        on_wake: Callable[[float, float], None],
        *,
        together: bool,
        timeout: float,
    ) -> dict[str, Any]:
        """Start ``count`` workflows, each sleeping durably for ``seconds`` and then calling
        ``on_wake(intended_fire_time, time_sleep_returned)``; wait for all of them.

        With ``together``, every run first waits at a start line that opens once all have
        started, so all ``count`` sleeps begin at the same moment; otherwise each run
        sleeps as soon as it starts. Returns details (e.g. how long starting took)."""
        ...

    def start_promise_waiter(self, key: str, on_resume: Callable[[], None]) -> None:
        """Start a workflow that waits on a promise and then runs a step that calls
        ``on_resume()`` first thing."""
        ...

    def wait_promise_pending(self, key: str, *, timeout: float) -> None:
        """Return once the workflow ``key`` is blocked on its promise."""
        ...

    def resolve_promise(self, key: str) -> None:
        """Resolve the promise of workflow ``key`` through the public API."""
        ...

    def wait_done(self, key: str, *, timeout: float) -> None:
        """Block until workflow ``key`` has finished (raise if it failed)."""
        ...
