"""The dashboard's run list at scale: the query the browser asks for (filter, search,
sort, page), checked on the kernel side, and one page of rows as the browser shows them.
The store does the work (``client.query_runs``): a page costs the same at 10,000 runs."""

from __future__ import annotations

import dataclasses
from typing import Any

from flovyn_nb import client
from flovyn_nb.model import RunInfo, RunStatus
from flovyn_nb.widgets.render import ms

JSON = Any
PAGE_SIZE = 50
_SORTS = ("created", "updated", "duration", "status", "workflow_id", "kind")
_STATUSES = {status.value for status in RunStatus}
ERROR_WIDTH = 160  # characters of an error summary in a row (the detail has all of it)


def first_query(limit: int = PAGE_SIZE) -> client.RunQuery:
    return client.RunQuery(limit=limit)


def next_query(query: client.RunQuery, content: dict[str, JSON]) -> client.RunQuery:
    """The query after a browser message ``{action: "query", ...}``; fields it does not
    name stay; anything malformed is ignored (a browser cannot break the list)."""
    changes: dict[str, Any] = {}
    if "status" in content:
        status = content["status"]
        changes["statuses"] = (status,) if status in _STATUSES else ()
        changes["offset"] = 0
    if isinstance(content.get("search"), str):
        changes["search"] = content["search"][:200]
        changes["offset"] = 0
    if "kind" in content:
        kind = content["kind"]
        changes["kind"] = kind if isinstance(kind, str) and kind else None
        changes["offset"] = 0
    if content.get("sort") in _SORTS:
        changes["sort"] = content["sort"]
        changes["descending"] = bool(content.get("descending", True))
        changes["offset"] = 0
    since = content.get("since_hours")
    if "since_hours" in content:
        import time

        changes["created_from"] = (
            time.time() - float(since) * 3600
            if isinstance(since, int | float) and since > 0
            else None
        )
        changes["offset"] = 0
    offset = content.get("offset")
    if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0:
        changes["offset"] = offset
    return dataclasses.replace(query, **changes)


def _error_summary(run: RunInfo) -> str | None:
    if run.error is None:
        return None
    text = (
        f"{run.error.type}: {run.error.message}".splitlines()[0]
        if run.error.message
        else run.error.type
    )
    return text if len(text) <= ERROR_WIDTH else text[: ERROR_WIDTH - 1] + "…"


def row_json(
    run: RunInfo, live: set[str] | None = None, wait: client.QueueWait | None = None
) -> dict[str, JSON]:
    """A run's row in the dashboard's list; ``wait``: where it waits for an engine
    (``client.queue_waits``), said instead of the generic "not loaded" hint."""
    created = run.created_at.timestamp()
    updated = run.updated_at.timestamp()
    stuck = None
    if wait is not None:
        stuck = wait.describe()
    elif live is not None:
        stuck = client.unattended(run, live)
    return {
        "workflow_id": run.workflow_id,
        "kind": run.kind,
        "status": run.status.value,
        "created": ms(created),
        "updated": ms(updated),
        "duration": ms(updated - created) if run.status.is_terminal else None,
        "error": _error_summary(run),
        "child": run.parent_id is not None,
        "stuck": stuck,
    }


def query_json(query: client.RunQuery) -> dict[str, JSON]:
    return {
        "status": query.statuses[0] if query.statuses else "ALL",
        "search": query.search,
        "kind": query.kind,
        "sort": query.sort,
        "descending": query.descending,
        "offset": query.offset,
        "limit": query.limit,
        "since": query.created_from is not None,
    }
