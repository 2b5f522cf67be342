"""Where the store is: the one rule (``store.discover_store``) the layers above share."""

from __future__ import annotations

import os

from flovyn_nb.store import discover_store, location_of

__all__ = ["discovered_store_location"]


def discovered_store_location(start: str | os.PathLike[str] | None = None) -> str:
    """The store a process working in ``start`` (default: here) finds by itself, ignoring
    ``FLOVYN_NB_STORE``: what a terminal in the project uses without ``--store``."""
    return location_of(discover_store(start))
