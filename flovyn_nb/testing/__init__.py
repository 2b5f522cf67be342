"""Helpers for testing code that uses flovyn_nb: a temporary store and virtual time.

```python
from flovyn_nb.testing import FakeClock, temporary_engine

def test_approval_times_out():
    clock = FakeClock()
    with temporary_engine(clock=clock):
        h = fn.start_workflow(approval, order)
        wait_until(lambda: fn.pending_promises())
        clock.advance(timedelta(hours=4))      # the 4 h timeout fires at once
        assert h.result(timeout=5) == "timed out"
```

With ``FakeClock(autojump=True)`` timers, retries and timeouts fire as soon as the engine
has nothing else to do, so a workflow that sleeps for days finishes in milliseconds.

Without an engine, Flovyn's mocks (``MockWorkflowContext``, ``MockTaskContext``,
``TimeController``; see :mod:`flovyn_nb.testing.mocks`) unit-test one workflow or task.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from flovyn_nb.engine.clock import Clock, FakeClock, SystemClock
from flovyn_nb.runtime import Runtime
from flovyn_nb.testing.mocks import MockTaskContext, MockWorkflowContext, TimeController

__all__ = [
    "FakeClock",
    "MockTaskContext",
    "MockWorkflowContext",
    "SystemClock",
    "TimeController",
    "temporary_engine",
    "temporary_store",
    "wait_until",
]

T = TypeVar("T")


@contextlib.contextmanager
def temporary_store() -> Iterator[Path]:
    """A path for a fresh store file in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="flovyn-") as folder:
        yield Path(folder) / "flovyn.duckdb"


@contextlib.contextmanager
def temporary_engine(
    *, clock: Clock | None = None, store: str | Path | None = None, **options: Any
) -> Iterator[Runtime]:
    """Start the process's engine on a temporary (or given) store; stop it afterwards.

    Yields what :func:`flovyn_nb.start` returns (store location, ``running``, ``errors``).
    """
    from flovyn_nb import client

    with contextlib.ExitStack() as stack:
        path = store if store is not None else stack.enter_context(temporary_store())
        engine = client.start(path, clock=clock, **options)
        try:
            yield engine
        finally:
            client.stop()


def wait_until(
    condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.005, message: str = ""
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(message or f"condition not met within {timeout} s")
        time.sleep(interval)
