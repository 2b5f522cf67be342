"""The embedded backend: one DuckDB file shared politely between processes.

:class:`DuckDBStore` implements :class:`flovyn_nb.store.Store`. The file is held only
while in use (``lease.py``: open on demand, let go when idle or when another process
knocks); every commit rings the doorbell (``bell.py``); ``ops.py`` and ``queries.py``
hold the statements, ``schema.py`` the tables and migrations. DuckDB's errors leave this package as
:class:`~flovyn_nb.errors.StoreError` (or a more precise :class:`FlovynError`).
"""

from __future__ import annotations

import contextlib
import os
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from flovyn_nb.errors import FlovynError, InvalidInput, StoreError
from flovyn_nb.model import LogEntry, PromiseInfo, RunInfo, RunStatus
from flovyn_nb.store import bells
from flovyn_nb.store import commit_news as news
from flovyn_nb.store.duckdb import (
    apply,
    catalog_ops,
    ops,
    queries,
    runpages,
    schema,
    stepcache,
    taskqueue,
)
from flovyn_nb.store.duckdb.bell import JOINED, RING, Bell
from flovyn_nb.store.duckdb.bell import mark as bell_mark
from flovyn_nb.store.duckdb.lease import Lease
from flovyn_nb.store.protocol import (
    CachedStep,
    Change,
    Claim,
    Intent,
    RequestCancel,
    SendSignal,
    SettlePromise,
    TimeOutPromises,
)
from flovyn_nb.store.rows import (
    Claimed,
    EngineRow,
    HistoryEvent,
    Inbox,
    PromiseRow,
    RunRow,
    SignalRow,
)
from flovyn_nb.store.runquery import RunPage, RunQuery
from flovyn_nb.store.taskqueue import QueuedTask

if TYPE_CHECKING:
    import pandas

    from flovyn_nb.store.catalog import (
        DefinitionRow,
        FireSchedule,
        NewDefinition,
        QueueRow,
        ScheduleRow,
    )

T = TypeVar("T")
Con = duckdb.DuckDBPyConnection


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


class DuckDBStore:
    """One flovyn store file.

    Args:
        path: the DuckDB file.
        create: create the file (and its folder) when missing; otherwise a missing file is
            a :class:`StoreError`.
        lock_timeout: how long to wait for another process to release the file (default:
            ``FLOVYN_NB_LOCK_TIMEOUT`` or 30 s).
        idle_release: how long the file stays open after the last use.

    Raises:
        InvalidInput: ``FLOVYN_NB_LOCK_TIMEOUT`` is not a number.
        StoreError: the path is a folder, or missing with ``create=False``, or its folder
            cannot be made.
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
        self.path = Path(path).expanduser().resolve()
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
        self._work_bell = Bell(Path(f"{self.path}.work"))
        self._slot_bell = Bell(Path(f"{self.path}.slot"))
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

    # -- the file (this backend's own API: its tests and tools use it) ---------------------

    @property
    def bell(self) -> Bell:
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

    def transaction(self, fn: Callable[[Con], T], *, mark: bytes = RING) -> T:
        """Run ``fn(con)`` in one committed transaction (then ring the doorbell)."""
        with self._mapped():
            return self.lease.transaction(fn, mark=mark)

    def autocommit(self, fn: Callable[[Con], T], *, mark: bytes = RING) -> T:
        """Run ``fn(con)``, which must issue exactly one statement, committed on its own."""
        with self._mapped():
            return self.lease.autocommit(fn, mark=mark)

    def read(self, fn: Callable[[Con], T]) -> T:
        """Run ``fn(con)`` for reading."""
        with self._mapped():
            return self.lease.read(fn)

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

    # -- the protocol: identity and holding the file ------------------------------------

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def doorbell(self) -> Bell:
        return self.lease.bell

    @property
    def work_bell(self) -> Bell:
        return self._work_bell

    @property
    def slot_bell(self) -> Bell:
        return self._slot_bell

    def warm(self) -> None:
        with self._mapped():
            self.lease.warm()

    def is_warm(self) -> bool:
        return self.lease.ready()

    @property
    def tenure(self) -> int:
        return self.lease.tenure

    def release(self) -> None:
        self.lease.release()

    def stop_waiting(self) -> None:
        self.lease.abandon_waits()

    def close(self) -> None:
        self.lease.close()

    # -- the protocol: writes ------------------------------------------------------------

    def commit(self, changes: Sequence[Change]) -> list[Any]:
        mark = bell_mark(news.said(changes))  # the ring says what changed (the live feed)
        if apply.one_statement(changes):
            # One kind of row: one INSERT, which commits without BEGIN / COMMIT.
            results = self.autocommit(lambda con: apply.apply(con, changes), mark=mark)
        else:
            results = self.transaction(lambda con: apply.apply(con, changes), mark=mark)
        if bells.leaves_work(changes):
            self._work_bell.ring()
        if bells.ends_runs(changes):
            self._slot_bell.ring()
        return results

    def _one(self, intent: Intent) -> Any:
        return self.commit([Change(intents=[intent])])[0]

    def register_engine(
        self, engine_id: str, *, pid: int, host: str, proc_start: str | None, now: float
    ) -> None:
        self.transaction(
            lambda con: ops.register_engine(con, engine_id, pid, host, proc_start, now),
            mark=JOINED,  # the other engines refresh their peers on this ring only
        )

    def stop_engine(self, engine_id: str) -> None:
        def stop(con: Con) -> None:
            ops.release_runs(con, engine_id)
            ops.stop_engine(con, engine_id)

        self.transaction(stop)
        self._work_bell.ring()

    def claim(
        self,
        engine_id: str,
        kinds: Sequence[str],
        alive: Callable[[EngineRow], bool],
        *,
        limit: int | None = None,
        queues: Sequence[str] = ("default",),
        now: float | None = None,
    ) -> Claimed:
        result: Claimed = self._one(Claim(engine_id, kinds, alive, limit, queues, now))
        return result

    def release_runs(self, engine_id: str) -> None:
        self.transaction(lambda con: ops.release_runs(con, engine_id))
        self._work_bell.ring()

    def time_out_promises(self, promise_ids: Sequence[str]) -> list[PromiseRow]:
        ids = list(promise_ids)
        rows: list[PromiseRow] = self._one(TimeOutPromises(lambda: ids))
        return rows

    def settle_promise(self, request: SettlePromise) -> PromiseRow:
        row: PromiseRow = self._one(request)
        return row

    def send_signal(self, request: SendSignal) -> RunRow:
        run: RunRow = self._one(request)
        return run

    def request_cancel(self, workflow_id: str, reason: str = "") -> RunRow:
        run: RunRow = self._one(RequestCancel(workflow_id, reason))
        return run

    # -- the protocol: reads -------------------------------------------------------------

    def live_engines(self) -> list[EngineRow]:
        return self.read(ops.live_engine_rows)

    def find_run(self, workflow_id: str) -> RunRow | None:
        return self.read(lambda con: ops.find_run(con, workflow_id))

    def run_status(self, execution_id: str) -> tuple[RunStatus, Any, Any] | None:
        return self.read(lambda con: ops.run_status(con, execution_id))

    def load_histories(self, execution_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
        return self.read(lambda con: ops.load_histories(con, execution_ids))

    def undelivered(self, execution_ids: Sequence[str]) -> Inbox:
        ids = list(execution_ids)

        def scan(con: Con) -> Inbox:
            cancels = ops.cancel_requested(con, ids)
            return Inbox(
                ops.undelivered_promises(con, ids),
                [SignalRow(*row) for row in ops.undelivered_signals(con, ids)],
                [execution_id for execution_id, _ in cancels],
                {execution_id: reason for execution_id, reason in cancels if reason},
            )

        return self.read(scan)

    def queued_tasks(self, task_ids: Sequence[str]) -> list[QueuedTask]:
        ids = list(task_ids)
        return self.read(lambda con: taskqueue.read(con, ids))

    def get_run(self, workflow_id: str, *, with_events: bool = True) -> RunInfo | None:
        return self.read(lambda con: queries.get_run(con, workflow_id, with_events=with_events))

    def find_cached_step(
        self, task_kind: str, source_hash: str, input_hash: str
    ) -> CachedStep | None:
        return self.read(lambda con: stepcache.find(con, task_kind, source_hash, input_hash))

    def list_runs(
        self, *, statuses: Iterable[str] = (), kind: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        chosen = list(statuses)
        return self.read(
            lambda con: queries.list_runs(con, statuses=chosen, kind=kind, limit=limit)
        )

    def query_runs(self, query: RunQuery) -> RunPage:
        checked = query.checked()
        return self.read(lambda con: runpages.query_runs(con, checked))

    def source_hashes(
        self, *, kind: str, statuses: Iterable[str] = ()
    ) -> list[tuple[str, str | None]]:
        chosen = list(statuses)
        return self.read(lambda con: queries.source_hashes(con, kind=kind, statuses=chosen))

    def promises(
        self, *, workflow_id: str | None = None, pending_only: bool = True
    ) -> list[PromiseInfo]:
        return self.read(
            lambda con: queries.promises(con, workflow_id=workflow_id, pending_only=pending_only)
        )

    def logs(self, execution_id: str, *, since_ts: float | None = None) -> list[LogEntry]:
        return self.read(lambda con: queries.logs(con, execution_id, since_ts=since_ts))

    # -- the protocol: the catalog ---------------------------------------------------------

    def record_definitions(
        self,
        definitions: Sequence[NewDefinition],
        *,
        engine_id: str | None,
        queues: Sequence[str],
        now: float,
    ) -> None:
        chosen, served = list(definitions), list(queues)
        if chosen:
            self.transaction(
                lambda con: catalog_ops.record_definitions(con, chosen, engine_id, served, now)
            )

    def list_definitions(
        self, *, type: str | None = None, kind: str | None = None, all_versions: bool = False
    ) -> list[DefinitionRow]:
        return self.read(
            lambda con: catalog_ops.list_definitions(
                con, type=type, kind=kind, all_versions=all_versions
            )
        )

    def set_queue(self, queue: QueueRow, *, now: float) -> None:
        self.transaction(lambda con: catalog_ops.set_queue(con, queue, now))
        self._work_bell.ring()

    def list_queues(self) -> list[QueueRow]:
        return self.read(catalog_ops.list_queues)

    def put_schedule(self, schedule: ScheduleRow) -> ScheduleRow:
        row = self.transaction(lambda con: catalog_ops.put_schedule(con, schedule))
        self._work_bell.ring()
        return row

    def list_schedules(self) -> list[ScheduleRow]:
        return self.read(catalog_ops.list_schedules)

    def pause_schedule(self, name: str, paused: bool, *, next_fire: float | None) -> None:
        if not self.transaction(lambda con: catalog_ops.set_paused(con, name, paused, next_fire)):
            raise InvalidInput(catalog_ops.no_schedule(name))
        self._work_bell.ring()

    def delete_schedule(self, name: str) -> None:
        if not self.transaction(lambda con: catalog_ops.delete_schedule(con, name)):
            raise InvalidInput(catalog_ops.no_schedule(name))
        self._work_bell.ring()

    def fire_schedule(self, fire: FireSchedule) -> list[str] | None:
        started = self.transaction(lambda con: catalog_ops.fire_schedule(con, fire))
        if started:
            self._work_bell.ring()
        return started

    def sql(
        self, query: str, params: list[Any] | None = None, *, write: bool = False
    ) -> pandas.DataFrame:
        """Run a query over the store's tables and return a pandas DataFrame.

        Read-only unless ``write`` (see ``readonly.py``): one SELECT, run in a
        read-only transaction that is rolled back. With ``write=True`` the statements run
        in one committed transaction, for deliberate maintenance.

        Raises:
            InvalidInput: the query is not valid SQL for this store, or (without
                ``write``) is not a single read-only statement; nothing was changed.
            FlovynError: pandas is not installed.
        """
        try:
            import pandas  # noqa: F401  (duckdb's .df() needs it)
        except ImportError:
            raise FlovynError("fn.sql needs pandas: pip install 'flovyn_nb[sql]'") from None
        from flovyn_nb.store.duckdb import readonly

        if write:
            return self.transaction(lambda con: readonly.write_query(con, query, params))
        return self.read(lambda con: readonly.read_query(con, query, params))
