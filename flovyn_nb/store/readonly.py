"""Queries over the store (``fn.sql``, ``flovyn-nb sql``): read-only unless asked to write.

The store is the run record, so a query must not change it by accident. Two guards, both
DuckDB's own, so neither depends on spotting keywords in the text:

1. DuckDB parses the text (``extract_statements``): it must hold exactly one statement, of
   type SELECT (which covers ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``, ``SHOW``,
   ``SUMMARIZE``) or EXPLAIN. Everything else is refused before it runs: INSERT, UPDATE,
   DELETE, MERGE, CREATE, ALTER, DROP; COPY and EXPORT (they write files); ATTACH, DETACH,
   USE, INSTALL, LOAD, SET, RESET and PRAGMA (they change the connection the engine shares,
   e.g. its checkpoint settings); CALL, CHECKPOINT, VACUUM, PREPARE, EXECUTE and
   transaction control.
2. The statement runs inside ``BEGIN TRANSACTION READ ONLY`` that is always rolled back, so
   a SELECT that writes after all (``WITH d AS (DELETE … RETURNING *) SELECT …``,
   ``nextval(…)``, ``EXPLAIN ANALYZE DELETE …``) is refused by DuckDB itself.

Table functions that read files (``read_csv``, ``read_parquet``, ``glob``) stay allowed:
the query runs with the caller's own permissions (who can run ``fn.sql`` can read those
files anyway), joining runs with a CSV is useful, and none of them can write.

``write=True`` (``flovyn-nb sql --write``) is for deliberate maintenance: the text (one or
more statements) runs in one transaction that is committed; transaction control inside it
is refused, since the store commits or rolls back the whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import duckdb

from flovyn_nb.errors import InvalidInput

if TYPE_CHECKING:
    import pandas

__all__ = ["READ_STATEMENTS", "read_query", "write_query"]

READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})

# Errors that come from the query itself (its text, its values, a file it reads), as
# opposed to the store; they become InvalidInput.
_QUERY_ERRORS: tuple[type[duckdb.Error], ...] = (
    duckdb.ProgrammingError,  # parser, binder, catalog, invalid input
    duckdb.DataError,  # conversion, out of range, type mismatch
    duckdb.NotSupportedError,
    duckdb.IntegrityError,  # constraints (write mode)
    duckdb.DependencyException,
    duckdb.SequenceException,
    duckdb.PermissionException,
    duckdb.IOException,  # a file the query reads (read_csv('missing.csv'))
)

_WRITE_HINT = "for a deliberate maintenance write pass --write (fn.sql(query, write=True))"


def _one_line(exc: BaseException) -> str:
    """DuckDB's multi-line messages (with a caret under the query) as one line."""
    lines = (line.strip() for line in str(exc).splitlines())
    return " ".join(line for line in lines if line and set(line) != {"^"})


def _statements(con: duckdb.DuckDBPyConnection, text: str) -> list[duckdb.Statement]:
    try:
        statements = con.extract_statements(text)
    except duckdb.Error as exc:
        raise InvalidInput(f"bad SQL: {_one_line(exc)}") from None
    if not statements:
        raise InvalidInput("the query is empty; give one SQL statement, e.g. SELECT …")
    return statements


def _frame(result: duckdb.DuckDBPyConnection) -> pandas.DataFrame:
    if result.description is None:  # a statement with no result set (CREATE, ATTACH)
        import pandas

        return pandas.DataFrame()
    return result.df()


def read_query(
    con: duckdb.DuckDBPyConnection, text: str, params: list[Any] | None = None
) -> pandas.DataFrame:
    """Run one read-only statement and return its rows; the store is left unchanged.

    Raises:
        InvalidInput: the text is not valid SQL, holds more (or less) than one statement,
            is not a SELECT or EXPLAIN, would write, or fails on its values.
    """
    statements = _statements(con, text)
    if len(statements) != 1:
        raise InvalidInput(
            f"queries run one statement at a time; this text holds {len(statements)} "
            "(separate them, or drop the extra ';')"
        )
    kind = statements[0].type
    if kind not in READ_STATEMENTS:
        raise InvalidInput(
            f"queries are read-only: {kind.name} statements are refused and nothing was "
            f"changed; use SELECT (or EXPLAIN) to read; {_WRITE_HINT}"
        )
    con.execute("BEGIN TRANSACTION READ ONLY")
    try:
        return _frame(con.execute(text, params or []))
    except duckdb.TransactionException:
        # In a read-only transaction this is DuckDB refusing a write the statement tried.
        raise InvalidInput(
            "queries are read-only: this statement would write to the store and was "
            f"refused; nothing was changed; {_WRITE_HINT}"
        ) from None
    except _QUERY_ERRORS as exc:
        raise InvalidInput(f"bad SQL: {_one_line(exc)}") from None
    finally:
        # Rolled back even after a success: nothing a query did may stay.
        con.execute("ROLLBACK")


def write_query(
    con: duckdb.DuckDBPyConnection, text: str, params: list[Any] | None = None
) -> pandas.DataFrame:
    """Run maintenance statements inside the caller's transaction; the last one's rows.

    Raises:
        InvalidInput: the text is not valid SQL, holds transaction control, or fails.
    """
    statements = _statements(con, text)
    control = [s for s in statements if s.type is duckdb.StatementType.TRANSACTION]
    if control:
        raise InvalidInput(
            "--write runs the statements in one transaction of its own; leave out "
            "BEGIN / COMMIT / ROLLBACK"
        )
    try:
        return _frame(con.execute(text, params or []))
    except _QUERY_ERRORS as exc:
        raise InvalidInput(f"bad SQL: {_one_line(exc)}") from None
