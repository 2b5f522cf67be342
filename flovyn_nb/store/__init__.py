"""The store: the :class:`Store` protocol, the rows that cross it, and its backends.

Only the backends (``duckdb/``, ``postgres/``) import a database driver; no
connection, statement or driver type leaves this package. Open a store with
:func:`open_store`: a file path opens the embedded DuckDB backend, a ``postgresql://`` URL
the PostgreSQL backend (psycopg loads only then). Errors leave as
:class:`~flovyn_nb.errors.FlovynError` subclasses (mostly :class:`StoreError`).

- ``protocol.py``: :class:`Store` (one method per intent), :class:`Change` and the intents
  a commit carries, the :class:`Doorbell`;
- ``rows.py``: the plain rows (events, logs, runs, promises, engines);
- ``inbox_rules.py``: the checks every backend makes before writing into a run's inbox;
- ``duckdb/``: :class:`~flovyn_nb.store.duckdb.DuckDBStore` (lease, doorbell, schema,
  statements).
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Any

from flovyn_nb.errors import InvalidInput, StoreError
from flovyn_nb.store.protocol import (
    CachedStep,
    CacheStep,
    Change,
    Claim,
    Doorbell,
    DoorbellWatcher,
    FlagCancel,
    Heartbeat,
    Intent,
    MarkSignalDelivered,
    ReleaseRun,
    ReopenRun,
    RequestCancel,
    ResetPromise,
    SendSignal,
    SettlePromise,
    Store,
    TimeOutPromises,
)
from flovyn_nb.store.rows import (
    Claimed,
    EngineRow,
    EventRow,
    HistoryEvent,
    Inbox,
    LogRow,
    NewPromise,
    NewRun,
    PromiseRow,
    RunRow,
    RunUpdate,
    SignalRow,
    as_stored,
)
from flovyn_nb.store.runquery import RunPage, RunQuery

__all__ = [
    "DEFAULT_STORE",
    "CacheStep",
    "CachedStep",
    "Change",
    "Claim",
    "Claimed",
    "Doorbell",
    "DoorbellWatcher",
    "EngineRow",
    "EventRow",
    "FlagCancel",
    "Heartbeat",
    "HistoryEvent",
    "Inbox",
    "Intent",
    "LogRow",
    "MarkSignalDelivered",
    "NewPromise",
    "NewRun",
    "PromiseRow",
    "ReleaseRun",
    "ReopenRun",
    "RequestCancel",
    "ResetPromise",
    "RunPage",
    "RunQuery",
    "RunRow",
    "RunUpdate",
    "SendSignal",
    "SettlePromise",
    "SignalRow",
    "Store",
    "TimeOutPromises",
    "as_stored",
    "canonical_path",
    "default_store_path",
    "discover_store",
    "is_url",
    "location_of",
    "open_store",
    "project_root",
]

DEFAULT_STORE = Path(".flovyn") / "flovyn.duckdb"
# ``scheme://`` at the start: a URL, not a file name (a Windows drive letter has no //).
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?#]*):[^@/?#]*@")
POSTGRES_SCHEMES = ("postgresql", "postgres")
# ``postgresql:/host/db``: what ``Path("postgresql://host/db")`` makes of a URL.
_MANGLED_URL = re.compile(r"^postgres(?:ql)?:(?!//)", re.IGNORECASE)


def canonical_path(path: str | os.PathLike[str]) -> Path:
    """The store's one true name: symlinks resolved, so every process knocks on (and
    listens to) the same ``.knock`` and ``.bell`` files whatever name it was given."""
    return Path(path).expanduser().resolve()


STORE_FOLDER = ".flovyn"
# What marks the top of a project: a kernel in ``notebooks/`` and a shell at the
# repository's root must meet in one store, the one beside these.
_PROJECT_MARKERS = (".git", "pyproject.toml")


def project_root(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The nearest folder at or above ``start`` (default: the working folder) holding
    ``.git`` or ``pyproject.toml``, or None outside any project."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if any((folder / marker).exists() for marker in _PROJECT_MARKERS):
            return folder
    return None


def discover_store(start: str | os.PathLike[str] | None = None) -> Path:
    """The store a process working in ``start`` (default: the working folder) uses when
    nothing names one, found the same way by kernel, batch, CLI and server:

    1. the nearest existing ``.flovyn/`` folder walking up from ``start``, up to the top
       of the enclosing project (never beyond it: another project's store, or one in
       ``/tmp``, is not this one's);
    2. else ``.flovyn/`` at the top of the enclosing project (the nearest folder with
       ``.git`` or ``pyproject.toml``);
    3. else ``.flovyn/`` in ``start`` itself.

    The file inside is always ``flovyn.duckdb``. Nothing is created here.
    """
    here = Path(start if start is not None else Path.cwd()).resolve()
    top = project_root(here)
    walk = (here, *here.parents)
    if top is not None:
        walk = walk[: walk.index(top) + 1]
    else:
        walk = (here,)
    for folder in walk:
        if (folder / STORE_FOLDER).is_dir():
            return folder / DEFAULT_STORE
    return (top if top is not None else here) / DEFAULT_STORE


def default_store_path() -> str | Path:
    """``FLOVYN_NB_STORE`` if set (a path, or a URL kept as given), else
    :func:`discover_store` from the working folder."""
    named = os.environ.get("FLOVYN_NB_STORE")
    if named and _scheme(named) is not None:
        return named
    return Path(named) if named else discover_store()


def _scheme(target: str | os.PathLike[str]) -> str | None:
    match = _URL.match(target) if isinstance(target, str) else None
    return None if match is None else match.group(1).lower()


def is_url(target: str | os.PathLike[str]) -> bool:
    """Whether ``target`` is a URL (``scheme://…``) rather than a file path."""
    return _scheme(target) is not None


def location_of(target: str | os.PathLike[str]) -> str:
    """The :attr:`Store.location` a store opened on ``target`` would have (no I/O beyond
    resolving a path; a URL's password is replaced by ``***``).

    Raises:
        InvalidInput: a PostgreSQL URL that lost a slash (``Path("postgresql://…")``).
    """
    if _MANGLED_URL.match(str(target)):
        raise InvalidInput(
            f"the store {target!s} looks like a PostgreSQL URL that lost a slash; write "
            "postgresql://user@host:port/database (a store is a file path or such a URL)"
        )
    if _scheme(target) is not None:
        return _PASSWORD.sub(r"\1:***@", str(target))
    return str(canonical_path(target))


def _open_postgres(url: str, *, create: bool, **options: Any) -> Store:
    # Found, not imported here: only the backend imports its driver.
    if importlib.util.find_spec("psycopg") is None:
        raise StoreError(
            "PostgreSQL stores need psycopg: pip install 'flovyn_nb[postgres]'",
            path=location_of(url),
        )
    from flovyn_nb.store.postgres import PostgresStore

    return PostgresStore(url, create=create, **options)


def open_store(target: str | os.PathLike[str], *, create: bool = True, **options: Any) -> Store:
    """Open the store at ``target``: a file path opens the embedded DuckDB backend, a
    ``postgresql://`` URL the PostgreSQL one.

    Args:
        target: a path (DuckDB file) or a ``postgresql://`` (``postgres://``) URL.
        create: create a missing file (and its folder), or the tables in an empty
            database; otherwise that is a StoreError.
        options: backend options (DuckDB: ``lock_timeout``, ``idle_release``;
            PostgreSQL: ``lock_timeout``, ``lease``, ``pool_size``).

    Raises:
        InvalidInput: a URL whose scheme no backend serves.
        StoreError: the store cannot be opened or created.
    """
    scheme = _scheme(target)
    location_of(target)  # refuses a mangled URL
    if scheme in POSTGRES_SCHEMES:
        return _open_postgres(str(target), create=create, **options)
    if scheme is not None:
        raise InvalidInput(
            f"unknown store URL scheme {scheme!r} in {location_of(target)}; give a file path "
            "(a DuckDB store) or a postgresql:// URL"
        )
    from flovyn_nb.store.duckdb import DuckDBStore  # the driver loads on first use

    return DuckDBStore(target, create=create, **options)
