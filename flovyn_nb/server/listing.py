"""The runs list: filters, text search, sort and pages.

With ``client.query_runs`` (paged by the store's own query) a page costs the same at any
number of runs. A client without it has only ``client.list_runs`` (filters by status and
workflow kind, newest first, no offset, sort, search or total): then every run is read
and the search, sort, counts and page are made here, so ``total`` and each page are
exact all the same, at a cost that grows with the store (see bench/server_api.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flovyn_nb import client
from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunInfo, RunStatus

__all__ = ["MAX_LIMIT", "SORT_KEYS", "Page", "Query", "list_page"]

MAX_LIMIT = 500
# sort key in the API -> how a run compares (ties keep the newest-first order)
SORT_KEYS: dict[str, Callable[[RunInfo], Any]] = {
    "created": lambda r: r.created_at,
    "updated": lambda r: r.updated_at,
    "workflowId": lambda r: r.workflow_id,
    "kind": lambda r: r.kind,
    "status": lambda r: r.status.value,
    "duration": lambda r: r.updated_at - r.created_at,
}


@dataclass(frozen=True)
class Query:
    """A checked runs query (see :meth:`parse`)."""

    statuses: tuple[str, ...] = ()
    kind: str | None = None
    text: str = ""
    limit: int = 50
    offset: int = 0
    sort: str = "-created"

    @classmethod
    def parse(cls, args: dict[str, str]) -> Query:
        """The query of ``GET runs`` from its (single-valued) arguments.

        Raises:
            InvalidInput: a value the API does not take; the message names it.
        """
        statuses: list[str] = []
        for item in filter(None, (s.strip() for s in args.get("status", "").split(","))):
            try:
                statuses.append(RunStatus(item.upper()).value)
            except ValueError:
                raise InvalidInput(
                    f"unknown status {item!r}; use one of "
                    + ", ".join(s.value for s in RunStatus)
                    + " (several separated by commas)"
                ) from None
        sort = args.get("sort", "-created") or "-created"
        if sort.removeprefix("-") not in SORT_KEYS:
            raise InvalidInput(
                f"unknown sort {sort!r}; use one of {', '.join(SORT_KEYS)}, "
                "with a leading '-' for descending"
            )
        return cls(
            statuses=tuple(statuses),
            kind=args.get("kind") or None,
            text=args.get("q", "").strip(),
            limit=_integer(args, "limit", 50, 1, MAX_LIMIT),
            offset=_integer(args, "offset", 0, 0, None),
            sort=sort,
        )


def _integer(args: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        span = f"{low} to {high}" if high is not None else f"{low} or more"
        raise InvalidInput(f"{name} must be a whole number from {span}, not {raw!r}")
    return value


@dataclass(frozen=True)
class Page:
    runs: list[RunInfo]
    total: int
    counts: dict[str, int]  # matches of every filter but the status one, by status


# API sort name -> client.query_runs sort name
_STORE_SORTS = {"workflowId": "workflow_id"}


def list_page(query: Query, store: str) -> Page:
    """One page of the runs matching ``query``, how many match in all, and the counts
    by status (blocking)."""
    query_runs = getattr(client, "query_runs", None)
    key = query.sort.removeprefix("-")
    if query_runs is not None:
        page = query_runs(
            status=list(query.statuses) or None,
            kind=query.kind,
            search=query.text,
            sort=_STORE_SORTS.get(key, key),
            descending=query.sort.startswith("-"),
            offset=query.offset,
            limit=query.limit,
            store=store,
        )
        return Page(list(page.runs), int(page.total), dict(page.counts))
    runs = client.list_runs(kind=query.kind, store=store)  # newest first
    if query.text:
        needle = query.text.casefold()
        runs = [
            r
            for r in runs
            if needle in r.workflow_id.casefold()
            or needle in r.execution_id.casefold()
            or needle in r.kind.casefold()
        ]
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.status.value] = counts.get(run.status.value, 0) + 1
    if query.statuses:
        runs = [r for r in runs if r.status.value in query.statuses]
    if query.sort != "-created":  # else the client's order already
        # Ties by workflow id, as the store orders them: pages never overlap.
        runs.sort(key=lambda r: r.workflow_id)
        runs.sort(key=SORT_KEYS[key], reverse=query.sort.startswith("-"))
    return Page(runs[query.offset : query.offset + query.limit], len(runs), counts)
