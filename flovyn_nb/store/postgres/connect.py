"""Connection strings, the connection pool, and psycopg's errors as one clear line.

A store URL is a libpq URL (``postgresql://user:password@host:port/database?options``).
Its password never leaves this module: :func:`redact` gives the store's location, and every
error names the server by host and port only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import conninfo

from flovyn_nb.errors import StoreError

# The password part of a URL's authority: ``scheme://user:PASSWORD@``.
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):[^@/?#]*@")
CONNECT_TIMEOUT = 10  # seconds; libpq's connect_timeout unless the URL sets one


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (the store's location)."""
    return _PASSWORD.sub(r"\1:***@", url)


@dataclass(frozen=True)
class Target:
    """A parsed store URL."""

    url: str  # as given (with its password: for connecting only)
    location: str  # without the password
    host: str
    port: str
    database: str

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def parse(url: str) -> Target:
    """Raises: StoreError (the URL is not a valid libpq connection string)."""
    location = redact(url)
    try:
        parts = conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise StoreError(
            f"bad PostgreSQL URL {location}: {_clean(exc, url)}; expected "
            "postgresql://user:password@host:port/database",
            path=location,
        ) from None
    host = str(parts.get("host") or parts.get("hostaddr") or "localhost")
    port = str(parts.get("port") or "5432")
    if not port.isdigit():
        raise StoreError(
            f"bad PostgreSQL URL {location}: the port {port!r} is not a number; expected "
            "postgresql://user:password@host:port/database",
            path=location,
        )
    database = str(parts.get("dbname") or parts.get("user") or "postgres")
    return Target(url, location, host, port, database)


def _clean(exc: BaseException, url: str) -> str:
    """psycopg's message on one line, without the URL's password."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    password = conninfo_password(url)
    if password:
        text = text.replace(password, "***")
    return text


def conninfo_password(url: str) -> str | None:
    try:
        value = conninfo.conninfo_to_dict(url).get("password")
    except psycopg.Error:
        match = _PASSWORD.match(url)
        return None if match is None else url[len(match.group(1)) + 1 : match.end() - 1] or None
    return None if value is None else str(value)


def store_error(target: Target, exc: BaseException, doing: str = "") -> StoreError:
    """One line for a psycopg (or pool) error: what failed, on which server, and why."""
    what = f" ({doing})" if doing else ""
    if isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable
    ):
        return StoreError(
            f"cannot reach the PostgreSQL server at {target.server}{what} for the store "
            f"{target.location}: {_clean(exc, target.url)}; check that the server runs and "
            "that the URL is right",
            path=target.location,
        )
    return StoreError(
        f"store error on {target.location}{what}: {_clean(exc, target.url)}",
        path=target.location,
    )


def connect(target: Target, *, timeout: float | None = None) -> psycopg.Connection[Any]:
    """A new autocommit connection in UTC.

    Raises:
        StoreError: the server cannot be reached or refuses the connection.
    """
    options: dict[str, Any] = {"autocommit": True, "application_name": "flovyn_nb"}
    if "connect_timeout" not in target.url:
        options["connect_timeout"] = max(1, int(timeout or CONNECT_TIMEOUT))
    try:
        con = psycopg.connect(target.url, **options)
    except psycopg.Error as exc:
        raise store_error(target, exc, "connecting") from None
    configure(con)
    return con


def configure(con: psycopg.Connection[Any]) -> None:
    """Every connection reads and writes times in UTC."""
    con.execute("SET TIME ZONE 'UTC'")


def make_pool(target: Target, *, max_size: int, timeout: float) -> Any:
    """A psycopg_pool ConnectionPool, opened, its connections autocommit and in UTC.

    Raises:
        StoreError: psycopg_pool is missing (with the pip line to run).
    """
    try:
        from psycopg_pool import ConnectionPool
    except ImportError:
        raise StoreError(
            "PostgreSQL stores need psycopg_pool: pip install 'flovyn_nb[postgres]'",
            path=target.location,
        ) from None

    kwargs: dict[str, Any] = {"autocommit": True, "application_name": "flovyn_nb"}
    if "connect_timeout" not in target.url:
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    pool = ConnectionPool(
        target.url,
        min_size=1,
        max_size=max_size,
        kwargs=kwargs,
        configure=configure,
        timeout=timeout,
        num_workers=1,
        open=False,
        name=f"flovyn_nb {target.location}",
    )
    pool.open(wait=False)
    return pool
