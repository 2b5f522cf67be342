"""Queries over the store (``fn.sql``, ``flovyn-nb sql``): read-only unless asked to write.

The store is the run record, so a query must not change it by accident. Three guards, all
on DuckDB's own parse of the text, none on spotting keywords in it:

1. ``extract_statements``: the text must hold exactly one statement, of type SELECT (which
   covers ``WITH``, ``FROM``, ``VALUES``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``).
   Everything else is refused before it runs: INSERT, UPDATE, DELETE, MERGE, CREATE, ALTER,
   DROP; COPY and EXPORT (they write files); ATTACH, DETACH, USE, INSTALL, LOAD, SET, RESET
   and PRAGMA (they change the connection the engine shares, e.g. its checkpoint
   settings); CALL, CHECKPOINT, VACUUM, PREPARE, EXECUTE, transaction control; and EXPLAIN
   (``EXPLAIN ANALYZE`` runs its statement, which guard 2 cannot see into).
2. ``json_serialize_sql``: the functions the SELECT calls, anywhere in it, must not be ones
   that act beyond the query: ``checkpoint()`` (the store checkpoints only on purpose),
   logging and profiling switches, parser extensions, and ``query(…)`` /
   ``json_execute_serialized_sql(…)``, which run SQL given as a string that these guards
   never see.
3. The statement runs inside ``BEGIN TRANSACTION READ ONLY`` that is always rolled back, so
   a SELECT that writes after all (``WITH d AS (DELETE … RETURNING *) SELECT …``,
   ``nextval(…)``) is refused by DuckDB itself.

Table functions that read files (``read_csv``, ``read_parquet``, ``glob``) stay allowed:
the query runs with the caller's own permissions (who can run ``fn.sql`` can read those
files anyway), joining runs with a CSV is useful, and none of them can write.

``write=True`` (``flovyn-nb sql --write``) is for deliberate maintenance: the text (one or
more statements) runs in one transaction that is committed; transaction control inside it
is refused, since the store commits or rolls back the whole.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any

import duckdb

from flovyn_nb.errors import InvalidInput

if TYPE_CHECKING:
    import pandas

__all__ = ["READ_STATEMENTS", "REFUSED_FUNCTIONS", "read_query", "write_query"]

READ_STATEMENTS = frozenset({duckdb.StatementType.SELECT})

# Functions a SELECT can call that act beyond the query and its transaction (on the file,
# the connection the engine shares, or DuckDB's parser), or that run SQL passed as a
# string. As DuckDB's parser names them (lower case). Writes to tables are not listed:
# the read-only transaction refuses those whatever calls them.
REFUSED_FUNCTIONS = frozenset(
    {
        "checkpoint",
        "force_checkpoint",
        "enable_logging",
        "disable_logging",
        "truncate_duckdb_logs",
        "write_log",
        "enable_profiling",
        "disable_profiling",
        "setseed",
        "add_grammar_extension",
        "remove_grammar_extension",
        "register_external_resource",
        "register_external_resource_type",
        "create_external_resource",
        "deregister_external_resource",
        "destroy_external_resource",
        "query",
        "json_execute_serialized_sql",
    }
)

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


def _function_names(tree: object, into: set[str]) -> set[str]:
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "function_name" and isinstance(value, str):
                into.add(value.lower())
            else:
                _function_names(value, into)
    elif isinstance(tree, list):
        for value in tree:
            _function_names(value, into)
    return into


def _called_functions(con: duckdb.DuckDBPyConnection, text: str) -> set[str]:
    """Every function (scalar or table) the SELECT ``text`` calls, from DuckDB's own AST."""
    row = con.execute("SELECT json_serialize_sql(?)", [text]).fetchone()
    tree = json.loads(row[0]) if row is not None else {}
    if not isinstance(tree, dict) or tree.get("error"):
        message = tree.get("error_message") if isinstance(tree, dict) else None
        raise InvalidInput(f"bad SQL: {message or 'DuckDB could not read the query'}")
    return _function_names(tree.get("statements"), set())


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
            is not a SELECT, calls a function that acts beyond it, would write, or fails on its values.
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
            f"changed; use SELECT to read; {_WRITE_HINT}"
        )
    con.execute("BEGIN TRANSACTION READ ONLY")
    try:
        refused = sorted(_called_functions(con, text) & REFUSED_FUNCTIONS)
        if refused:
            raise InvalidInput(
                f"queries are read-only: {', '.join(f'{name}()' for name in refused)} "
                "acts beyond the query and is refused; nothing was changed; "
                f"{_WRITE_HINT}"
            )
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
        # Rolled back even after a success: nothing a query did may stay. (Some errors end
        # the transaction themselves; then there is nothing left to roll back.)
        with contextlib.suppress(duckdb.TransactionException):
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
