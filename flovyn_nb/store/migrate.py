"""Copying a store's history into another store (``flovyn-nb migrate``), any backend to any.

Runs, events, promises, signals and logs are copied table by table, keyed rows with
``ON CONFLICT DO NOTHING``, so a second copy adds nothing that is there already; log lines
(which have no key) are copied for the runs whose lines the target has none of yet.
Engines are not copied, and copied runs have no owner: whoever serves the target claims
them. Both stores are opened by :func:`flovyn_nb.store.open_store`, which refuses a
schema newer than this flovyn_nb reads. JSON travels as text, times as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flovyn_nb.errors import InvalidInput
from flovyn_nb.store.protocol import Store

# table -> (columns, key columns, JSON columns)
TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]] = {
    "workflow_executions": (
        ("id", "workflow_id", "kind", "status", "input", "output", "error", "source_hash",
         "owner", "parent_id", "cancel_requested", "created_at", "updated_at"),
        ("id",),
        frozenset({"input", "output", "error"}),
    ),
    "events": (
        ("execution_id", "seq", "type", "payload", "ts"),
        ("execution_id", "seq"),
        frozenset({"payload"}),
    ),
    "promises": (
        ("id", "execution_id", "name", "status", "timeout_at", "schema", "value", "error",
         "created_at", "resolved_at", "resolved_by", "delivered"),
        ("id",),
        frozenset({"schema", "value"}),
    ),
    "signals": (
        ("id", "execution_id", "name", "value", "created_at", "delivered", "seq"),
        ("id",),
        frozenset({"value"}),
    ),
    "logs": (
        ("execution_id", "task_execution_id", "ts", "stream", "level", "message"),
        (),
        frozenset(),
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Copied:
    """One table's outcome: rows in the source, rows copied now, rows in the target."""

    table: str
    source: int
    copied: int
    target: int


class _Dialect:
    def __init__(self, store: Store) -> None:
        from flovyn_nb.store.duckdb import DuckDBStore

        self.store: Any = store
        self.duck = isinstance(store, DuckDBStore)
        self.mark = "?" if self.duck else "%s"

    def as_text(self, column: str) -> str:
        return f"CAST({column} AS VARCHAR)" if self.duck else f"{column}::text"

    def value(self, value: Any) -> Any:
        if isinstance(value, datetime):  # DuckDB keeps naive UTC, PostgreSQL aware
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC).replace(tzinfo=None) if self.duck else aware
        return value

    def rows(self, table: str) -> list[tuple[Any, ...]]:
        columns, _, json_columns = TABLES[table]
        chosen = ", ".join(self.as_text(c) if c in json_columns else c for c in columns)
        rows: list[tuple[Any, ...]] = self.store.read(
            lambda con: [tuple(r) for r in con.execute(f"SELECT {chosen} FROM {table}").fetchall()]
        )
        return rows

    def count(self, table: str) -> int:
        row = self.store.read(lambda con: con.execute(f"SELECT count(*) FROM {table}").fetchone())
        return int(row[0])


def copy_history(source: Store, target: Store) -> list[Copied]:
    """Copy every run's history from ``source`` into ``target`` (see the module docs).

    Raises:
        InvalidInput: both are the same store.
        StoreError: either store cannot be read or written.
    """
    if source.location == target.location:
        raise InvalidInput(f"--from and --to name the same store ({source.location})")
    src, dst = _Dialect(source), _Dialect(target)
    outcome: list[Copied] = []
    for table, (columns, key, json_columns) in TABLES.items():
        rows = src.rows(table)
        if table == "workflow_executions":  # the target's engines claim them
            owner = columns.index("owner")
            rows = [(*r[:owner], None, *r[owner + 1 :]) for r in rows]
        if table == "logs":
            have = {r[0] for r in dst.store.read(
                lambda con: con.execute("SELECT DISTINCT execution_id FROM logs").fetchall())}  # fmt: skip
            rows = [r for r in rows if r[0] not in have]
        marks = ", ".join(
            f"CAST({dst.mark} AS JSON)" if c in json_columns else dst.mark for c in columns
        )
        conflict = f" ON CONFLICT ({', '.join(key)}) DO NOTHING" if key else ""
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){conflict}"
        before = dst.count(table)
        values = [tuple(dst.value(v) for v in row) for row in rows]
        if values:

            def insert(con: Any, statement: str = statement, values: Any = values) -> None:
                if dst.duck:
                    con.executemany(statement, values)
                else:
                    with con.cursor() as cursor:
                        cursor.executemany(statement, values)

            dst.store.transaction(insert)
        after = dst.count(table)
        outcome.append(Copied(table, src.count(table), after - before, after))
    return outcome
