"""``flovyn-nb worker``: serve the runs of a module's or a notebook's workflows headless."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

import click

__all__ = ["LOG_FORMAT", "queue_json", "queue_line", "register"]

# One line per event, with the time, the level, the process and the logger.
LOG_FORMAT = "%(asctime)s %(levelname)s %(process)d %(name)s: %(message)s"


def _queue_wait(run: Any, store: str) -> Any:
    """Where the run waits for an engine (None: it ended or a live engine holds it); the
    same answer as the run panel's (``client.queue_wait``)."""
    from flovyn_nb import client

    return client.queue_wait(run, store=store)


def queue_json(run: Any, store: str) -> dict[str, Any]:
    """``show --json`` fields: the run's queue, whether it waits in it, who would claim it
    (live engines serving the queue with the run's workflow loaded)."""
    wait = _queue_wait(run, store)
    return {
        "queue": run.queue,
        "waiting_in_queue": wait is not None,
        "queue_served_by": [] if wait is None else wait.engines,
    }


def queue_line(run: Any, store: str) -> str:
    """``show``'s line about the run's queue."""
    wait = _queue_wait(run, store)
    if wait is None:
        return f"queue:  {run.queue}"
    return f"queue:  {run.queue} ({wait.describe()})"


def register(main: click.Group, errors: Callable[[], Any]) -> None:
    """Add ``worker``, ``start`` and ``schedules`` to ``main``; ``errors()`` turns
    flovyn errors into one line."""
    from flovyn_nb.cli import schedules, start

    start.register(main, errors)
    schedules.register(main, errors)

    @main.command(
        epilog=(
            "A notebook's definition cells are the code cells tagged 'flovyn-definitions' "
            "or 'parameters'; without such tags, the cells holding only imports, constant "
            "assignments and def/class statements decorated with @workflow/@task (or "
            "@dataclass). No other cell runs."
        )
    )
    @click.argument("source", metavar="MODULE_OR_NOTEBOOK")
    @click.option(
        "--store",
        default=None,
        help="Store file or URL (default: $FLOVYN_NB_STORE or ./.flovyn/flovyn.duckdb).",
    )
    @click.option(
        "--queue",
        "queues",
        multiple=True,
        help="Serve this queue (repeatable; default: the 'default' queue).",
    )
    @click.option(
        "--concurrency",
        type=click.IntRange(min=1),
        default=None,
        help="At most this many runs at once in this worker (default: no limit).",
    )
    @click.option(
        "--grace",
        type=click.FloatRange(min=0),
        default=30.0,
        show_default=True,
        help="Seconds a stop waits for the steps in flight before handing the runs back.",
    )
    def worker(
        source: str,
        store: str | None,
        queues: tuple[str, ...],
        concurrency: int | None,
        grace: float,
    ) -> None:
        """Serve the runs of the workflows in MODULE_OR_NOTEBOOK (a module name, a .py file
        or an .ipynb notebook's definition cells) until SIGTERM or Ctrl-C."""
        from flovyn_nb.worker import serve

        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=LOG_FORMAT)
        with errors():
            code = serve(
                source,
                store=store,
                queues=list(queues) or None,
                concurrency=concurrency,
                grace=grace,
            )
        sys.exit(code)
