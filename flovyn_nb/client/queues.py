"""Door functions for queues: their limits (``fn.queue``) and who serves them."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flovyn_nb.client import definitions as catalog
from flovyn_nb.engine.queues import check_queue_name
from flovyn_nb.errors import InvalidInput
from flovyn_nb.store.catalog import QueueRow, Server

__all__ = [
    "QueueInfo",
    "QueueWait",
    "queue",
    "queue_info",
    "queue_wait",
    "queue_waits",
    "serving_engines",
]


@dataclass(frozen=True)
class QueueInfo:
    """A queue's limits (None: unlimited) and the live engines serving it."""

    name: str
    concurrency: int | None
    worker_concurrency: int | None
    limit: tuple[int, float] | None
    engines: list[str]

    @property
    def served(self) -> bool:
        return bool(self.engines)


def _positive(name: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def queue(
    name: str,
    *,
    concurrency: int | None = None,
    worker_concurrency: int | None = None,
    limit: tuple[int, float] | None = None,
    store: str | os.PathLike[str] | None = None,
) -> QueueInfo:
    """Set a queue's limits in the store (replacing the ones it had), as DBOS queues do.

    Args:
        name: the queue (runs go there with ``fn.start_workflow(..., queue=name)``).
        concurrency: at most this many of its runs claimed and not ended, across engines.
        worker_concurrency: at most this many of its runs held by any one engine.
        limit: ``(n, seconds)``: at most ``n`` of its runs start per ``seconds``.

    Raises:
        InvalidInput: a bad name or limit; nothing was recorded.
    """
    check_queue_name(name)
    row = QueueRow(
        name,
        _positive("concurrency", concurrency),
        _positive("worker_concurrency", worker_concurrency),
    )
    if limit is not None:
        if (
            not isinstance(limit, tuple)
            or len(limit) != 2
            or _positive("the limit's count", limit[0]) is None
            or not isinstance(limit[1], int | float)
            or limit[1] <= 0
        ):
            raise InvalidInput(
                f"limit must be (runs, seconds) with runs >= 1 and seconds > 0, got {limit!r}"
            )
        row = QueueRow(row.name, row.concurrency, row.worker_concurrency, limit[0], float(limit[1]))
    catalog.store_of(store).set_queue(row, now=time.time())
    return queue_info(name, store=store)


def serving_engines(name: str, *, store: str | os.PathLike[str] | None = None) -> list[str]:
    """The live engines that registered a workflow on queue ``name``."""
    engines: dict[str, None] = {}
    for row in catalog.store_of(store).list_definitions(type="workflow"):
        for server in catalog.alive(row.servers):
            if name in server.queues:
                engines[server.engine.id] = None
    return list(engines)


def queue_info(name: str, *, store: str | os.PathLike[str] | None = None) -> QueueInfo:
    """A queue's recorded limits and the live engines that serve it."""
    rows = {q.name: q for q in catalog.store_of(store).list_queues()}
    row = rows.get(name, QueueRow(name))
    limit = None
    if row.rate_limit is not None and row.rate_period is not None:
        limit = (row.rate_limit, row.rate_period)
    return QueueInfo(
        name,
        row.concurrency,
        row.worker_concurrency,
        limit,
        serving_engines(name, store=store),
    )


@dataclass(frozen=True)
class QueueWait:
    """Where a run that no live engine holds waits: its queue, the live engines that
    would claim it (they serve the queue and have its workflow loaded), and the queues on
    which live engines have its workflow loaded."""

    queue: str
    kind: str
    engines: list[str]
    loaded_on: list[str]

    @property
    def served(self) -> bool:
        return bool(self.engines)

    def describe(self) -> str:
        """One line for a panel or ``show``: which queue, and who serves it or what to
        start so that someone does."""
        where = f"waiting in queue {self.queue!r}"
        count = len(self.engines)
        if count:
            return f"{where} — served by {count} engine{'s' if count > 1 else ''}"
        worker = "flovyn-nb worker MODULE" + (
            "" if self.queue == "default" else f" --queue {self.queue}"
        )
        if self.loaded_on:
            queues = ", ".join(repr(q) for q in self.loaded_on)
            return (
                f"{where} — no engine serves it (workflow {self.kind!r} is loaded on "
                f"queue {queues} only); start `{worker}`"
            )
        # A kernel serves the default queue: running the defining cell there is enough.
        fix = "run its defining cell or start" if self.queue == "default" else "start"
        return (
            f"{where} — no engine serves it: no kernel or worker has workflow "
            f"{self.kind!r} loaded; {fix} `{worker}`"
        )


def queue_wait(run: Any, *, store: str | os.PathLike[str] | None = None) -> QueueWait | None:
    """Where ``run`` (a ``RunInfo``) waits for an engine to claim it: None for a run that
    ended or that a live engine holds. Engines count as serving it only when they serve
    its queue with its workflow loaded (only they would claim it).

    Raises:
        StoreError: the store cannot be read.
    """
    if run.status.is_terminal:
        return None
    return queue_waits([run], store=store).get(run.workflow_id)


def queue_waits(
    runs: Iterable[Any], *, store: str | os.PathLike[str] | None = None
) -> dict[str, QueueWait]:
    """:func:`queue_wait` for a page of runs, by workflow id (only the waiting ones), in
    two store reads whatever their number.

    Raises:
        StoreError: the store cannot be read.
    """
    active = [run for run in runs if not run.status.is_terminal]
    if not active:
        return {}
    target = catalog.store_of(store)
    live = {e.id for e in target.live_engines()}
    waiting = [run for run in active if run.owner is None or run.owner not in live]
    if not waiting:
        return {}
    servers: dict[str, list[Server]] = {}
    for row in target.list_definitions(type="workflow"):
        servers.setdefault(row.kind, []).extend(catalog.alive(row.servers))
    waits = {}
    for run in waiting:
        loaded = servers.get(run.kind, [])
        engines = {s.engine.id: None for s in loaded if run.queue in s.queues}
        queues = sorted({q for s in loaded for q in s.queues})
        waits[run.workflow_id] = QueueWait(run.queue, run.kind, list(engines), queues)
    return waits
