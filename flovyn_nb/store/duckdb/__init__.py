"""The embedded DuckDB backend (the default): see :mod:`.backend`."""

from __future__ import annotations

from flovyn_nb.store.duckdb.backend import DuckDBStore

__all__ = ["DuckDBStore"]
