"""The store: the only package that imports duckdb.

:class:`Store` is one DuckDB file shared politely between processes (see ``lease.py``);
``ops`` holds every statement. Errors leave this package as :class:`StoreError`.
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from flovyn_nb.errors import FlovynError, InvalidInput, StoreError
from flovyn_nb.store import ops, schema
from flovyn_nb.store.lease import Lease, pid_alive

if TYPE_CHECKING:
    import pandas

__all__ = ["DEFAULT_STORE", "Store", "canonical_path", "default_store_path", "ops", "pid_alive"]

T = TypeVar("T")
DEFAULT_STORE = Path(".flovyn") / "flovyn.duckdb"
Con = duckdb.DuckDBPyConnection


def canonical_path(path: str | os.PathLike[str]) -> Path:
    """The store's one true name: symlinks resolved, so every process knocks on (and
    listens to) the same ``.knock`` and ``.bell`` files whatever name it was given."""
    return Path(path).expanduser().resolve()


def default_store_path() -> Path:
    """``FLOVYN_NB_STORE`` if set, else ``./.flovyn/flovyn.duckdb``."""
    return Path(os.environ.get("FLOVYN_NB_STORE") or DEFAULT_STORE)


def _one_line(exc: BaseException) -> str:
    """DuckDB's multi-line messages (with a caret under the query) as one line."""
    lines = (line.strip() for line in str(exc).splitlines())
    return " ".join(line for line in lines if line and set(line) != {"^"})


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, got {text!r}") from None


class Store:
    """One flovyn store file.

    Args:
        path: the DuckDB file.
        create: create the file (and its folder) when missing; otherwise a missing file is
            a :class:`StoreError`.
        lock_timeout: how long to wait for another process to release the file (default:
            ``FLOVYN_NB_LOCK_TIMEOUT`` or 30 s).
        idle_release: how long the file stays open after the last use.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        lock_timeout: float | None = None,
        idle_release: float = 0.1,
    ) -> None:
        if lock_timeout is None:
            lock_timeout = _env_seconds("FLOVYN_NB_LOCK_TIMEOUT", 30.0)
        self.path = canonical_path(path)
        if self.path.is_dir():
            raise StoreError(
                f"the store path {self.path} is a folder; name a file", path=str(self.path)
            )
        if not self.path.exists():
            if not create:
                raise StoreError(
                    f"no flovyn store at {self.path}; start an engine there first "
                    "(fn.start(store=...)) or pass the right --store",
                    path=str(self.path),
                )
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the folder for the store {self.path}: {exc.strerror or exc}",
                    path=str(self.path),
                ) from None
        self._prepared = False
        self.lease = Lease(
            self.path, lock_timeout=lock_timeout, idle_release=idle_release, on_open=self._on_open
        )

    def _on_open(self, con: Con) -> None:
        if not self._prepared:
            try:
                changed = schema.prepare(con, str(self.path))
            except duckdb.Error as exc:
                raise StoreError(f"cannot use {self.path}: {exc}", path=str(self.path)) from None
            self._prepared = True
            if changed:
                # Fold the new schema into the file at once: every open would otherwise
                # replay its DDL from the WAL. If that fails, the WAL still holds it.
                with contextlib.suppress(duckdb.Error, OSError):
                    self.lease.checkpoint(con)

    @property
    def bell(self) -> Any:
        return self.lease.bell

    @property
    def notices(self) -> list[str]:
        """One line for each damaged store file this process restored on open (a
        checkpoint was interrupted; see ``checkpoint.py``); also kept in
        ``<store>.recovery.log``."""
        return self.lease.notices

    def checkpoint(self) -> None:
        """Fold the store's WAL into the file now, protected by a copy taken first.

        Raises:
            StoreError: the store cannot be opened or written.
        """
        with self._mapped():
            try:
                self.lease.checkpoint()
            except OSError as exc:
                raise StoreError(
                    f"cannot checkpoint the store {self.path}: {exc.strerror or exc}",
                    path=str(self.path),
                ) from None

    def transaction(self, fn: Callable[[Con], T]) -> T:
        """Run ``fn(con)`` in one committed transaction (then ring the doorbell)."""
        with self._mapped():
            return self.lease.transaction(fn)

    def autocommit(self, fn: Callable[[Con], T]) -> T:
        """Run ``fn(con)``, which must issue exactly one statement, committed on its own."""
        with self._mapped():
            return self.lease.autocommit(fn)

    def read(self, fn: Callable[[Con], T]) -> T:
        with self._mapped():
            return self.lease.read(fn)

    def close(self) -> None:
        self.lease.close()

    @contextlib.contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except FlovynError as exc:
            # The finished frames below hold the connection; a traceback kept alive (by a
            # caller, or until exit) must not keep the DuckDB connection alive with it.
            traceback.clear_frames(exc.__traceback__)
            raise
        except duckdb.Error as exc:
            traceback.clear_frames(exc.__traceback__)
            raise StoreError(
                f"store error on {self.path}: {_one_line(exc)}", path=str(self.path)
            ) from None

    def sql(self, query: str, params: list[Any] | None = None) -> pandas.DataFrame:
        """Run a query over the store's tables and return a pandas DataFrame.

        Raises:
            InvalidInput: the query is not valid SQL for this store.
        """
        try:
            import pandas  # noqa: F401  (duckdb's .df() needs it)
        except ImportError:
            raise FlovynError("fn.sql needs pandas: pip install 'flovyn_nb[sql]'") from None

        def run(con: Con) -> pandas.DataFrame:
            try:
                return con.execute(query, params or []).df()
            except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
                raise InvalidInput(f"bad SQL: {_one_line(exc)}") from None

        return self.read(run)
