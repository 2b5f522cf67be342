"""The headless worker behind ``flovyn-nb worker``: serves the runs of the workflows it
imports, on the queues it is given, until SIGTERM or SIGINT.

It starts this process's engine (through the client, like every layer above it), which
claims new runs on its queues and the runs of engines that died, executes them and
heartbeats. A stop is graceful: no more claims, the task attempts in flight finish
(within ``grace`` seconds), then the engine hands every run it holds back to the store
for other engines. One log line per event goes to the ``flovyn_nb.worker`` logger.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from flovyn_nb import client
from flovyn_nb.definitions import TaskDefinition, registry
from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunStatus
from flovyn_nb.worker import loading

__all__ = ["EXIT_DIED", "EXIT_STOPPED", "serve"]

log = logging.getLogger("flovyn_nb.worker")

EXIT_STOPPED = 0  # stopped by a signal, gracefully
EXIT_DIED = 1  # the engine stopped on its own (its error is logged)


def _install(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT ask for a graceful stop (a second one is no different: the
    grace period bounds the stop). Returns how to put the old handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old: dict[int, Any] = {}

    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        old[signum] = signal.signal(signum, handler)

    def restore() -> None:
        for signum, previous in old.items():
            signal.signal(signum, previous)

    return restore


def serve(
    source: str,
    *,
    store: str | os.PathLike[str] | None = None,
    queues: Sequence[str] | None = None,
    concurrency: int | None = None,
    grace: float = 30.0,
    stop: threading.Event | None = None,
) -> int:
    """Load ``source``'s definitions and serve their runs until ``stop`` is set (or a
    SIGTERM/SIGINT arrives). Returns the exit code.

    Args:
        source: a module name, a ``.py`` file or a notebook (its definition cells).
        store: the store (default: ``FLOVYN_NB_STORE`` or ``./.flovyn/flovyn.duckdb``).
        queues: the queues to serve (default ``["default"]``).
        concurrency: at most this many runs held at once (default: no limit).
        grace: how long a stop waits for the task attempts in flight.

    Raises:
        InvalidInput: nothing to load, no workflow in it, or a bad option.
        StoreError / StoreLocked: the store cannot be used.
    """
    if concurrency is not None and concurrency < 1:
        raise InvalidInput(f"--concurrency must be at least 1, got {concurrency}")
    if grace < 0:
        raise InvalidInput(f"the grace period must not be negative, got {grace}")
    loaded = loading.load(source)
    names = registry.workflow_names()
    # A worker may serve only tasks: the steps other engines' runs put on its queues.
    tasks = sorted(d.name for d in registry.definitions() if isinstance(d, TaskDefinition))
    if not names and not tasks:
        raise InvalidInput(f"{loaded} defines no @workflow: nothing to serve")
    serving = ", ".join(names) + (" and " if names and tasks else "")
    serving += f"tasks {', '.join(tasks)}" if tasks else ""
    stop = stop or threading.Event()
    restore = _install(stop)
    try:
        workflow_ids: dict[str, str] = {}

        def on_item(what: str, execution_id: str, data: Any) -> None:
            # Called on the engine's loop: log and return.
            if what == "claimed":
                workflow_ids[execution_id] = data
                log.info("claimed run %s", data)
            elif what == "finished":
                workflow_id = workflow_ids.pop(execution_id, execution_id)
                level = logging.WARNING if data is RunStatus.FAILED else logging.INFO
                log.log(level, "%s run %s", str(data.value).lower(), workflow_id)

        runtime = client.start(store, queues=queues, max_runs=concurrency, listener=on_item)
        log.info(
            "worker %s serving %s on queue(s) %s of %s (pid %d)",
            runtime.id,
            serving,
            ", ".join(queues or ["default"]),
            runtime.store_location,
            os.getpid(),
        )
        try:
            # A signal handler runs between two waits of at most a second.
            while not stop.wait(1.0):
                if not runtime.running:
                    log.error("the engine stopped: %s", "; ".join(runtime.errors[-3:]))
                    return EXIT_DIED
            log.info("stopping: in-flight steps may finish within %g s", grace)
            left = runtime.stop_gracefully(grace)
            if left:
                log.warning("%d step attempt(s) did not finish in time: they run again", left)
            log.info("stopped; its runs went back to the store")
            return EXIT_STOPPED
        finally:
            client.stop()
    finally:
        restore()
