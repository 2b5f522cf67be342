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
_YEAR_10000 = 253402300800  # epoch seconds past what a datetime holds


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
        kind: the workflow kind of a run this commit created (else ``None``): with
            ``created_at`` and ``queue`` it is what a runs list needs to show the new
            row without reading the store.
        created_at: the created run's creation time, epoch seconds (as stored).
        queue: the created run's queue.
    """

    execution_id: str
    workflow_id: str | None = None
    status: str | None = None
    promise: str | None = None
    promise_status: str | None = None
    kind: str | None = None
    created_at: float | None = None
    queue: str | None = None


_TEXTS = (("w", "workflow_id"), ("s", "status"), ("p", "promise"), ("ps", "promise_status"))
_CREATION = (("k", "kind"), ("t", "created_at"), ("q", "queue"))


def _row(record: News, keys: Sequence[tuple[str, str]]) -> dict[str, object]:
    row: dict[str, object] = {"x": record.execution_id}
    for key, name in keys:
        value = getattr(record, name)
        if value is not None:
            row[key] = value
    return row


def encode(records: Sequence[News]) -> str | None:
    """One line of JSON (no newline in it), or ``None`` when longer than
    :data:`MAX_ENCODED` characters.

    When the created runs' details (kind, creation time, queue) make it too long, they are
    left out (a watcher then learns of the new runs, not their rows: a runs list re-reads)."""
    for keys in ((*_TEXTS, *_CREATION), _TEXTS):
        rows = [_row(n, keys) for n in records]
        text = json.dumps(rows, separators=(",", ":"), ensure_ascii=True)
        if len(text) <= MAX_ENCODED:
            return text
    return None


def _a_time(value: object) -> bool:
    """Whether ``value`` is epoch seconds a datetime can hold (JSON also has NaN, 1e308)."""
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < _YEAR_10000
    )


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
        texts = [row.get(key) for key, _ in _TEXTS]
        kind, created_at, queue = (row.get(key) for key, _ in _CREATION)
        if any(value is not None and not isinstance(value, str) for value in (*texts, kind, queue)):
            return None
        if created_at is not None and not _a_time(created_at):
            return None
        # (Records of older writers have no creation details: they decode without them.)
        workflow_id, status, promise, promise_status = texts
        records.append(
            News(
                row["x"],
                workflow_id,
                status,
                promise,
                promise_status,
                kind=kind,
                created_at=None if created_at is None else float(created_at),
                queue=queue,
            )
        )
    return records
