"""The client door for ``flovyn-nb migrate``: copy a store's history into another."""

from __future__ import annotations

import os

from flovyn_nb.errors import StoreError
from flovyn_nb.store import open_store
from flovyn_nb.store.migrate import Copied, copy_history

__all__ = ["Copied", "migrate_store"]


def migrate_store(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> list[Copied]:
    """Copy the runs, events, promises, signals and logs of ``source`` into ``target``
    (a file path or a ``postgresql://`` URL each; the target is created when missing).
    Idempotent: a second call copies nothing new.

    Returns:
        One :class:`Copied` per table, with the counts after the copy.

    Raises:
        StoreError: a store cannot be opened (missing source, newer schema, unreachable
            server), or the target holds fewer rows than the source after the copy.
        InvalidInput: both name the same store.
    """
    src = open_store(source, create=False)
    try:
        dst = open_store(target, create=True)
        try:
            copied = copy_history(src, dst)
        finally:
            dst.close()
    finally:
        src.close()
    short = [c for c in copied if c.target < c.source]
    if short:
        raise StoreError(
            "the copy did not verify: "
            + ", ".join(
                f"{c.table} has {c.target} rows in the target, {c.source} in the source"
                for c in short
            )
        )
    return copied
