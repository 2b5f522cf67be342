"""Paged run lists for views that must scale (the dashboard): one query in the store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from flovyn_nb.model import RunStatus
from flovyn_nb.store import RunPage, RunQuery, Store

__all__ = ["RunPage", "RunQuery", "live_engine_ids", "query_runs", "unattended"]

# Bound by client/__init__ when it imports this module (importing it here would make a
# cycle): how the client picks the store, and how it reads a status argument.
_store_for: Callable[[Any], Store] | None = None
_statuses: Callable[[Any], list[str]] | None = None


def bind(store_for: Callable[[Any], Store], statuses: Callable[[Any], list[str]]) -> None:
    global _store_for, _statuses
    _store_for, _statuses = store_for, statuses


def query_runs(
    *,
    status: str | RunStatus | Iterable[str | RunStatus] | None = None,
    kind: str | None = None,
    search: str = "",
    created_from: float | None = None,
    created_to: float | None = None,
    sort: str = "created",
    descending: bool = True,
    offset: int = 0,
    limit: int = 50,
    store: str | os.PathLike[str] | None = None,
) -> RunPage:
    """One page of runs (no events), filtered, sorted and paged by the store itself.

    Args:
        status: only runs with this status (or any of these).
        kind: only runs of this workflow.
        search: a case-insensitive part of the workflow id, execution id or kind.
        created_from: only runs created at or after this UNIX time.
        created_to: only runs created before this UNIX time.
        sort: created, updated, duration, status, workflow_id or kind.
        descending: largest (newest) first.
        offset: how many matching runs to skip.
        limit: the page size, 1 to 1000.
        store: the store (default: the engine's, else the default store).

    Returns:
        The page's runs, the number of matches, and the matches by status ignoring
        ``status`` (what each status filter would show).

    Raises:
        InvalidInput: an unknown status or sort, a negative offset, a bad limit.
    """
    assert _store_for is not None and _statuses is not None  # bound on import
    query = RunQuery(
        statuses=tuple(_statuses(status)),
        kind=kind,
        search=search,
        created_from=created_from,
        created_to=created_to,
        sort=sort,
        descending=descending,
        offset=offset,
        limit=limit,
    ).checked()
    return _store_for(store).query_runs(query)


def live_engine_ids(store: str | os.PathLike[str] | None = None) -> set[str]:
    """Ids of the engines (kernels, workers, batch runs) alive on the store now."""
    assert _store_for is not None  # bound on import
    return {engine.id for engine in _store_for(store).live_engines()}


def unattended(run: Any, live: set[str]) -> str | None:
    """Why an active run does not move, when the reason is that no live engine took it:
    an engine claims the runs of the workflows registered in it, so a run with no live
    owner waits for someone to load its workflow (after a kernel restart, before its
    defining cell runs again). None for a run that ended or that a live engine owns."""
    if run.status.is_terminal or (run.owner is not None and run.owner in live):
        return None
    return (
        f"no kernel or worker has workflow {run.kind!r} loaded — run its defining cell "
        "(or start a worker with it) to continue this run"
    )
