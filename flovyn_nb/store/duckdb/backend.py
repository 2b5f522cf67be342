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
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from flovyn_nb.errors import DuplicateWorkflowId, FlovynError, InvalidInput, StoreError
from flovyn_nb.model import LogEntry, PromiseInfo, RunInfo, RunStatus
from flovyn_nb.store import inbox_rules
from flovyn_nb.store.duckdb import ops, queries, reopen, schema, stepcache
from flovyn_nb.store.duckdb.bell import JOINED, RING, Bell
from flovyn_nb.store.duckdb.lease import Lease
from flovyn_nb.store.protocol import (
    CachedStep,
    CacheStep,
    Change,
    Claim,
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

if TYPE_CHECKING:
    import pandas

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

    def autocommit(self, fn: Callable[[Con], T]) -> T:
        """Run ``fn(con)``, which must issue exactly one statement, committed on its own."""
        with self._mapped():
            return self.lease.autocommit(fn)

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
        if _one_statement(changes):
            # One kind of row: one INSERT, which commits without BEGIN / COMMIT.
            return self.autocommit(lambda con: _apply(con, changes))
        return self.transaction(lambda con: _apply(con, changes))

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

    def claim(
        self,
        engine_id: str,
        kinds: Sequence[str],
        alive: Callable[[EngineRow], bool],
        *,
        limit: int | None = None,
    ) -> Claimed:
        result: Claimed = self._one(Claim(engine_id, kinds, alive, limit))
        return result

    def release_runs(self, engine_id: str) -> None:
        self.transaction(lambda con: ops.release_runs(con, engine_id))

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


# -- applying changes ------------------------------------------------------------------------


def _one_statement(changes: Sequence[Change]) -> bool:
    """Whether the changes make one statement, which commits without BEGIN / COMMIT."""
    if any(
        c.intents or c.run_update or c.new_promise or c.statuses or c.delivered or c.timed_out
        for c in changes
    ):
        return False
    kinds = [
        sum(len(c.events) for c in changes),
        sum(len(c.logs) for c in changes),
        sum(c.new_run is not None for c in changes),
    ]
    return sum(1 for n in kinds if n) == 1  # one kind of row: one INSERT


def _apply(con: Con, changes: Sequence[Change]) -> list[Any]:
    results: list[Any] = [None] * len(changes)
    new_runs = [c.new_run for c in changes if c.new_run is not None]
    try:
        ops.insert_runs(con, new_runs)
    except duckdb.ConstraintException:
        # The workflow id's UNIQUE constraint (execution ids are fresh UUIDs).
        ids = sorted({run.workflow_id for run in new_runs})
        raise DuplicateWorkflowId(
            f"workflow id {ids[0]!r} is already used by another run"
            if len(ids) == 1
            else f"one of the workflow ids {', '.join(map(repr, ids))} is already used",
            workflow_id=ids[0] if len(ids) == 1 else None,
        ) from None
    ops.insert_events(con, [row for c in changes for row in c.events])
    ops.insert_logs(con, [row for c in changes for row in c.logs])
    latest = {u.execution_id: u for c in changes for u in c.statuses}
    latest.update((c.run_update.execution_id, c.run_update) for c in changes if c.run_update)
    ops.update_runs(con, list(latest.values()))
    promises = [c.new_promise for c in changes if c.new_promise is not None]
    if promises:
        rows = ops.create_promises(con, promises)
        for i, c in enumerate(changes):
            if c.new_promise is not None:
                results[i] = rows[c.new_promise.promise_id]
    # Set-based, whatever the number: a wave of 1000 timeouts is two statements.
    ops.mark_promises_delivered(con, [p for c in changes for p in c.delivered])
    ops.time_out_pending(con, [p for c in changes for p in c.timed_out])
    for i, c in enumerate(changes):
        for intent in c.intents:
            results[i] = _do(con, intent)
    return results


def _do(con: Con, intent: Intent) -> Any:
    match intent:
        case ReleaseRun(execution_id, engine_id):
            ops.release_run(con, execution_id, engine_id)
        case ResetPromise(promise_id):
            ops.reset_promise(con, promise_id)
        case MarkSignalDelivered(signal_id):
            ops.mark_signal_delivered(con, signal_id)
        case FlagCancel(execution_id):
            ops.request_cancel(con, execution_id)
        case Heartbeat(engine_id, now):
            ops.heartbeat(con, engine_id, now)
        case TimeOutPromises(take):
            return ops.time_out_promises(con, list(take()))
        case Claim():
            return _claim(con, intent)
        case SettlePromise():
            return _settle(con, intent)
        case SendSignal():
            return _signal(con, intent)
        case CacheStep():
            stepcache.remember(con, intent)
        case ReopenRun():
            return reopen.reopen_run(con, intent)
        case RequestCancel(workflow_id, reason):
            run = inbox_rules.active_run(ops.find_run(con, workflow_id), workflow_id, "cancel")
            ops.request_cancel(con, run.id, reason)
            return run
    return None


def _claim(con: Con, claim: Claim) -> Claimed:
    engines = ops.live_engine_rows(con)
    living = [e for e in engines if e.id == claim.engine_id or claim.alive(e)]
    alive = [e.id for e in living]
    for dead in (e for e in engines if e.id not in alive):
        ops.stop_engine(con, dead.id)
    candidates = ops.claimable_runs(con, claim.kinds, alive)[: claim.limit]
    taken = ops.claim_runs(con, [row.id for row in candidates], claim.engine_id, alive)
    rows = [row for row in candidates if row.id in taken]
    histories = ops.load_histories(con, [row.id for row in rows])
    return Claimed([(row, histories[row.id]) for row in rows], living)


def _settle(con: Con, request: SettlePromise) -> PromiseRow:
    run = ops.find_run(con, request.workflow_id)
    row = None if run is None else ops.find_promise(con, run.id, request.name)
    now = request.now()  # inside the transaction: the deadline is judged by it
    value_json = inbox_rules.check_settle(request, run, row, now)
    assert run is not None  # check_settle refuses an unknown run
    promise_id = ops.settle_promise(
        con,
        promise_id=None if row is None else row.id,
        execution_id=run.id,
        name=request.name,
        status=request.status,
        value_json=value_json,
        error=request.reason,
        resolved_by=request.resolved_by,
        now=now,
    )
    return inbox_rules.settled_row(request, run, row, promise_id, value_json)


def _signal(con: Con, request: SendSignal) -> RunRow:
    run, value_json = inbox_rules.check_signal(request, ops.find_run(con, request.workflow_id))
    ops.insert_signal(
        con,
        signal_id=str(uuid.uuid4()),
        execution_id=run.id,
        name=request.name,
        value_json=value_json,
        now=request.now,
    )
    return run
