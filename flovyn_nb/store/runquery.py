"""A page of runs for lists that must scale (the dashboard at 10,000 runs and more): the
filter, sort and page a backend applies in its query, and the page it returns.

Every backend implements :meth:`Store.query_runs` with these exact semantics (the store
contract checks them):

- ``statuses``: any of these (empty: all); ``kind``: exactly this workflow kind;
- ``search``: case-insensitive substring of the workflow id, the execution id or the kind;
- ``created_from`` / ``created_to``: epoch seconds, inclusive / exclusive;
- ``sort``: one of :data:`SORTS`; ``duration`` is ``updated_at - created_at``; ties are
  broken by workflow id, so pages never overlap;
- ``offset`` / ``limit``: the page; ``total`` counts every match, ``counts`` counts the
  matches of every filter except ``statuses``, by status (for the filter chips).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunInfo

SORTS = ("created", "updated", "duration", "status", "workflow_id", "kind")
MAX_LIMIT = 1000


@dataclass(frozen=True)
class RunQuery:
    """Which runs, in which order, which page."""

    statuses: tuple[str, ...] = ()
    kind: str | None = None
    search: str = ""
    created_from: float | None = None
    created_to: float | None = None
    sort: str = "created"
    descending: bool = True
    offset: int = 0
    limit: int = 50

    def checked(self) -> RunQuery:
        """This query, or InvalidInput naming the field that is wrong.

        Raises:
            InvalidInput: an unknown sort, a negative offset, a limit outside 1..1000.
        """
        if self.sort not in SORTS:
            raise InvalidInput(f"unknown sort {self.sort!r}; use one of {', '.join(SORTS)}")
        if self.offset < 0:
            raise InvalidInput(f"offset must be 0 or more, got {self.offset}")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        return self


@dataclass(frozen=True)
class RunPage:
    """One page of runs (without events) and what the whole match looks like."""

    runs: list[RunInfo]
    total: int
    counts: dict[str, int] = field(default_factory=dict)
