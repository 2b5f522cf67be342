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


def _queue_state(run: Any, store: str) -> tuple[bool, list[str]]:
    """(whether the run waits for an engine, the live engines serving its queue)."""
    from flovyn_nb import client

    waiting = not run.status.is_terminal and run.owner is None
    return waiting, client.queue_info(run.queue, store=store).engines


def queue_json(run: Any, store: str) -> dict[str, Any]:
    """``show --json`` fields: the run's queue, whether it waits in it, who serves it."""
    waiting, engines = _queue_state(run, store)
    return {"queue": run.queue, "waiting_in_queue": waiting, "queue_served_by": engines}


def queue_line(run: Any, store: str) -> str:
    """``show``'s line about the run's queue."""
    waiting, engines = _queue_state(run, store)
    if not waiting:
        return f"queue:  {run.queue}"
    if engines:
        return f"queue:  {run.queue} (waiting; {len(engines)} live engine(s) serve it)"
    return (
        f"queue:  {run.queue} (waiting; no live engine serves it: start "
        f"`flovyn-nb worker MODULE --queue {run.queue}`)"
    )


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
