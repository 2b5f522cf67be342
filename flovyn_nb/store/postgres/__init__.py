"""The PostgreSQL backend (many machines): :class:`PostgresStore` (see ``backend.py``)."""

from flovyn_nb.store.postgres.backend import PostgresStore

__all__ = ["PostgresStore"]
