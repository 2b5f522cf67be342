"""Queries over a PostgreSQL store (``fn.sql``, ``flovyn-nb sql``): read-only unless asked.

The guards are PostgreSQL's own, none of them on spotting keywords:

1. The query runs as a server-side cursor (``DECLARE … CURSOR FOR <query>``): PostgreSQL
   accepts only a SELECT or VALUES there (``WITH`` included, but no data-modifying
   ``WITH``), and one statement (the extended protocol takes no second one).
2. Inside ``BEGIN READ ONLY``, always rolled back: a function that writes (``nextval``,
   ``pg_notify``, an INSERT in a function) is refused by the server.
3. On a connection of its own, closed afterwards: a ``set_config(…)`` or anything else a
   query does to its session dies with it, never reaching the store's pooled connections.

The query is PostgreSQL's SQL. Placeholders are ``?`` (as on DuckDB) or ``$1``, ``$2``…;
they are turned into psycopg's own outside string literals, identifiers and comments.
``write=True`` runs the text in one committed transaction, on its own connection too.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING, Any

import psycopg

from flovyn_nb.errors import InvalidInput, StoreError
from flovyn_nb.store.postgres.connect import Target, connect, store_error

if TYPE_CHECKING:
    import pandas

_WRITE_HINT = "for a deliberate maintenance write pass --write (fn.sql(query, write=True))"
# Tokens the placeholder pass leaves alone: literals, quoted identifiers, comments,
# dollar-quoted strings.
_SKIP = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|(\$[A-Za-z_]*\$).*?\1",
    re.DOTALL,
)
_MARK = re.compile(r"\?|\$(\d+)")


def convert(text: str, params: list[Any] | None) -> tuple[str, list[Any]]:
    """``text`` with ``?``/``$n`` turned into ``%s`` (and ``%`` doubled), and the
    parameters in the order their marks appear.

    Raises:
        InvalidInput: the marks and the parameters do not agree.
    """
    given = list(params or [])
    ordered: list[Any] = []
    counter = iter(range(len(given) + 1))
    parts: list[str] = []

    def marks(chunk: str) -> str:
        def one(match: re.Match[str]) -> str:
            index = int(match.group(1)) - 1 if match.group(1) else next(counter)
            if not 0 <= index < len(given):
                raise InvalidInput(
                    f"bad SQL: the query has a placeholder for parameter {index + 1} but "
                    f"{len(given)} parameter(s) were given"
                )
            ordered.append(given[index])
            return "%s"

        return _MARK.sub(one, chunk.replace("%", "%%")) if given else chunk.replace("%", "%%")

    last = 0
    for match in _SKIP.finditer(text):
        parts.append(marks(text[last : match.start()]))
        parts.append(match.group(0).replace("%", "%%"))
        last = match.end()
    parts.append(marks(text[last:]))
    return "".join(parts), ordered


def _frame(cursor: psycopg.Cursor[Any]) -> pandas.DataFrame:
    import pandas

    if cursor.description is None:
        return pandas.DataFrame()
    columns = [column.name for column in cursor.description]
    return pandas.DataFrame(cursor.fetchall(), columns=columns)


def _bad(exc: psycopg.Error) -> InvalidInput:
    text = " ".join(str(exc).split())
    return InvalidInput(f"bad SQL: {text}")


def _why_not_a_query(
    con: psycopg.Connection[Any], query: str, values: list[Any] | None, exc: psycopg.Error
) -> InvalidInput:
    """The cursor refused the text: a statement that is not a query (PostgreSQL can still
    EXPLAIN it: an INSERT, UPDATE, DELETE, MERGE), or bad SQL."""
    with contextlib.suppress(psycopg.Error):
        con.rollback()
    values = values or []
    try:
        con.execute("BEGIN READ ONLY")
        con.execute(b"EXPLAIN " + query.encode(), values)
    except psycopg.errors.SyntaxError as again:
        if again.diag.statement_position == str(len("EXPLAIN ") + 1):
            return InvalidInput(
                f"bad SQL, or not a query: {' '.join(str(again).split())}; queries run one "
                f"read-only SELECT and nothing was changed; {_WRITE_HINT}"
            )
        return _bad(again)
    except psycopg.Error:
        return _bad(exc)
    finally:
        with contextlib.suppress(psycopg.Error):
            con.rollback()
    return InvalidInput(
        "queries are read-only: only one SELECT (or VALUES) statement is run and nothing "
        f"was changed; {_WRITE_HINT}"
    )


def run_query(
    target: Target, text: str, params: list[Any] | None, *, write: bool
) -> pandas.DataFrame:
    """Run the query on a connection of its own (see the module docs).

    Raises:
        InvalidInput: bad SQL, not one read-only SELECT (without ``write``), bad values.
        StoreError: the server cannot be reached.
    """
    if not text.strip():
        raise InvalidInput("the query is empty; give one SQL statement, e.g. SELECT …")
    # A write without parameters may hold several statements (the simple protocol runs
    # them all, as text); everything else is one statement with bound parameters.
    several = write and not params
    query, values = (text, None) if several else convert(text, params)
    con = connect(target)
    # JSON columns come back as their text, as DuckDB's do: a DataFrame is the same
    # whichever backend holds the store.
    for name in ("json", "jsonb"):
        con.adapters.register_loader(name, psycopg.types.string.TextLoader)
    try:
        if write:
            try:
                with con.transaction(), con.cursor() as cursor:
                    cursor.execute(query.encode(), values)
                    while cursor.nextset():  # the last statement's rows
                        pass
                    return _frame(cursor)
            except (psycopg.errors.ActiveSqlTransaction, psycopg.errors.NoActiveSqlTransaction):
                raise InvalidInput(
                    "--write runs the statements in one transaction of its own; leave out "
                    "BEGIN / COMMIT / ROLLBACK"
                ) from None
        con.autocommit = False
        con.execute("BEGIN READ ONLY")
        try:
            with con.cursor(name="flovyn_sql") as cursor:
                cursor.execute(query.encode(), values)
                return _frame(cursor)
        finally:
            with contextlib.suppress(psycopg.Error):
                con.rollback()
    except psycopg.errors.ReadOnlySqlTransaction:
        raise InvalidInput(
            "queries are read-only: this statement would write to the store and was "
            f"refused; nothing was changed; {_WRITE_HINT}"
        ) from None
    except psycopg.errors.SyntaxError as exc:
        if write:
            raise _bad(exc) from None
        raise _why_not_a_query(con, query, values, exc) from None
    except psycopg.errors.FeatureNotSupported as exc:
        raise InvalidInput(
            f"queries are read-only: {' '.join(str(exc).split())}; nothing was changed; "
            f"{_WRITE_HINT}"
        ) from None
    except (psycopg.ProgrammingError, psycopg.DataError, psycopg.IntegrityError) as exc:
        raise _bad(exc) from None
    except psycopg.OperationalError as exc:
        raise store_error(target, exc) from None
    except psycopg.Error as exc:
        raise StoreError(
            f"store error on {target.location}: {' '.join(str(exc).split())}"
        ) from None
    finally:
        with contextlib.suppress(psycopg.Error):
            con.close()
