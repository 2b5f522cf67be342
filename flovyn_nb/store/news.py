"""What a commit's doorbell ring says, the same on every backend.

A ring used to say only "someone committed": a watcher that wanted to know what changed
had to read the store, which on DuckDB means taking the file from the kernels that hold
it (50-300 ms per cold open of a shared file). A commit that creates a run, changes a
run's status, adds to a run's history, or creates or settles a promise now rings with a
short record of it (:class:`News`), so that the server's live feed can tell browsers
without opening the database (``flovyn_nb/server/feed.py``).

``store/commit_news.py`` decides it from a commit's changes alone, before they apply;
``None`` means "this commit did something a record does not describe": a watcher then
reads the store, as before. The DuckDB bell appends :func:`encode`'s line to the bell file, PostgreSQL sends
it in the doorbell's ``NOTIFY`` payload; :func:`decode` reads it back and refuses (``None``)
anything it does not understand, from an older or a newer writer alike.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_ENCODED", "PENDING", "News", "decode", "encode"]

# Longer records are not sent (a watcher reads the store instead): a PostgreSQL NOTIFY
# payload must stay under 8000 bytes, and a bell file should not grow by a page per commit.
MAX_ENCODED = 4000
PENDING = "PENDING"  # promise_status of a promise that started waiting


@dataclass(frozen=True, slots=True)
class News:
    """One thing a commit did to a run, as its ring tells other processes.

    Attributes:
        execution_id: the run's execution id (``""`` when the writer knew only the
            workflow id: an inbox write by another process).
        workflow_id: the run's workflow id, when the writer knew it (new runs, inbox
            writes, reopened runs); else ``None`` (the watcher maps the execution id).
        status: the run's new status (a ``RunStatus`` value), ``None`` when it kept it
            (only its history moved).
        promise: the name of a promise that started waiting or was settled.
        promise_status: ``"PENDING"`` (started waiting) or the settled status.
    """

    execution_id: str
    workflow_id: str | None = None
    status: str | None = None
    promise: str | None = None
    promise_status: str | None = None


def encode(records: Sequence[News]) -> str | None:
    """One line of JSON (no newline in it), or ``None`` when longer than
    :data:`MAX_ENCODED` characters."""
    rows = [
        {"x": n.execution_id}
        | {
            key: value
            for key, value in (
                ("w", n.workflow_id),
                ("s", n.status),
                ("p", n.promise),
                ("ps", n.promise_status),
            )
            if value is not None
        }
        for n in records
    ]
    text = json.dumps(rows, separators=(",", ":"), ensure_ascii=True)
    return text if len(text) <= MAX_ENCODED else None


def decode(text: str) -> list[News] | None:
    """The records of one :func:`encode` line; ``None`` for anything else."""
    try:
        rows = json.loads(text)
    except ValueError:
        return None
    if not isinstance(rows, list):
        return None
    records = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("x"), str):
            return None
        fields = [row.get(key) for key in ("w", "s", "p", "ps")]
        if any(value is not None and not isinstance(value, str) for value in fields):
            return None
        records.append(News(row["x"], *fields))
    return records
