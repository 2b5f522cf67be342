"""The server backend: a flovyn store in a PostgreSQL database, shared by any number of
processes on any number of hosts.

:class:`PostgresStore` implements :class:`flovyn_nb.store.Store` over a psycopg
connection pool. Every commit is one transaction that ends with a ``NOTIFY`` on the
doorbell's channel, after those of the work and slot bells it rings (``bell.py``); runs
are claimed within their queues' limits ``FOR UPDATE SKIP LOCKED`` (``queues.py``),
promises settled under a row lock (``ops.py``); ``catalog.py`` holds definitions and
schedules, ``retry.py`` retries and the step cache, ``schema.py`` the tables and
migrations, ``queries.py`` the user's reads, ``readonly.py`` ``fn.sql``. psycopg's errors leave as one-line
:class:`~flovyn_nb.errors.StoreError`\\ s that name the server, never the password.

Holding the store means nothing on a server: :meth:`warm` opens a pooled connection ahead
of use, :meth:`release` and :meth:`stop_waiting` have nothing to let go, :attr:`tenure` is
always 0 (others commit at any time), :meth:`close` closes the pool and the listener.

Ownership across hosts: an engine on another host is dead once its heartbeat is older
than the lease (``lease=``, ``FLOVYN_NB_LEASE``, default 10 s): the server's clock against
the time the engine wrote with its heartbeat (so hosts must keep time, as with NTP); on
this host the engine's own policy (its PID) decides at once. The engine also applies its
own ``stale_after`` to other hosts; the shorter of the two wins.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from flovyn_nb.errors import DuplicateWorkflowId, FlovynError, InvalidInput, StoreError
from flovyn_nb.model import LogEntry, PromiseInfo, RunInfo, RunStatus
from flovyn_nb.store import bells as rings
from flovyn_nb.store import commit_news as news
from flovyn_nb.store import inbox_rules
from flovyn_nb.store import taskqueue as tq
from flovyn_nb.store.postgres import catalog, connect, ops, queries, queues, retry, schema
from flovyn_nb.store.postgres import taskqueue as pg_tasks
from flovyn_nb.store.postgres.bell import CHANNEL, SLOT_CHANNEL, WORK_CHANNEL, Listener, PgBell
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
from flovyn_nb.store.runquery import RunPage, RunQuery

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
Con = ops.Con

DEFAULT_LEASE = 10.0
HOST = socket.gethostname()
# Transactions that lost a deadlock or met a concurrent insert start over (each attempt
# is a fresh transaction; nothing of the failed one stayed).
_ATTEMPTS = 5


class _StartOver(Exception):
    """A concurrent transaction inserted the row this one meant to insert."""


def _env_seconds(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{name} must be a number of seconds, got {text!r}") from None


class PostgresStore:
    """One flovyn store in a PostgreSQL database (or in the schema the URL's
    ``options=-csearch_path=…`` names).

    Args:
        url: ``postgresql://user:password@host:port/database``.
        create: create the tables in an empty database; otherwise that is a StoreError.
        lock_timeout: how long to wait for a pooled connection (default:
            ``FLOVYN_NB_LOCK_TIMEOUT`` or 30 s).
        lease: heartbeat age after which an engine on another host is dead (default:
            ``FLOVYN_NB_LEASE`` or 10 s).
        pool_size: the most connections this handle opens at once.
        idle_release: ignored (a DuckDB option; a pooled connection is no lock).

    Raises:
        StoreError: a bad URL, an unreachable server, not a flovyn store, a newer schema.
        InvalidInput: ``FLOVYN_NB_LOCK_TIMEOUT`` or ``FLOVYN_NB_LEASE`` is not a number.
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        lock_timeout: float | None = None,
        lease: float | None = None,
        pool_size: int = 8,
        idle_release: float | None = None,
    ) -> None:
        del idle_release
        self._target = connect.parse(url)
        self.lease = _env_seconds("FLOVYN_NB_LEASE", DEFAULT_LEASE) if lease is None else lease
        timeout = (
            _env_seconds("FLOVYN_NB_LOCK_TIMEOUT", 30.0) if lock_timeout is None else lock_timeout
        )
        con = connect.connect(self._target)
        try:
            schema.prepare(con, self._target.location, create=create)
        except psycopg.Error as exc:
            raise connect.store_error(self._target, exc, "preparing the schema") from None
        finally:
            con.close()
        self._token = uuid.uuid4().hex
        self._closed = False
        self._lock = threading.Lock()
        self._pool = connect.make_pool(self._target, max_size=pool_size, timeout=timeout)
        self._listener = Listener(self._target, self._token)
        self._bell = PgBell(self._listener, CHANNEL, self._ring)
        self._work_bell = PgBell(self._listener, WORK_CHANNEL, self._ring)
        self._slot_bell = PgBell(self._listener, SLOT_CHANNEL, self._ring)

    # -- plumbing -----------------------------------------------------------------------

    def _run(
        self, fn: Callable[[Con], T], *, write: bool, bells: Sequence[str] = (), say: str = ""
    ) -> T:
        if self._closed:
            raise StoreError(f"the store {self.location} is closed", path=self.location)
        from psycopg_pool import PoolClosed, PoolTimeout

        for attempt in range(_ATTEMPTS):
            try:
                with self._pool.connection() as con:
                    if not write:
                        return fn(con)
                    with con.transaction():
                        result = fn(con)
                        # Delivered at commit, in this order: the doorbell last (saying what
                        # changed), so that whoever heard it heard the commit's other bells too.
                        for channel in bells:
                            con.execute("SELECT pg_notify(%s, %s)", [channel, self._token])
                        con.execute("SELECT pg_notify(%s, %s)", [CHANNEL, self._token + say])
                    return result
            except (
                _StartOver,
                psycopg.errors.DeadlockDetected,
                psycopg.errors.SerializationFailure,
            ):
                if attempt == _ATTEMPTS - 1:
                    raise StoreError(
                        f"store error on {self.location}: a write kept meeting concurrent "
                        f"ones ({_ATTEMPTS} attempts); try again",
                        path=self.location,
                    ) from None
            except FlovynError:
                raise
            except PoolTimeout:
                raise StoreError(
                    f"no connection to the PostgreSQL server at {self._target.server} came "
                    f"free or could be made in time for the store {self.location}; check "
                    "that the server runs and accepts more connections",
                    path=self.location,
                ) from None
            except PoolClosed:
                raise StoreError(
                    f"the store {self.location} is closed", path=self.location
                ) from None
            except psycopg.Error as exc:
                raise connect.store_error(self._target, exc) from None
        raise AssertionError("unreachable")

    def transaction(self, fn: Callable[[Con], T], *, bells: Sequence[str] = (), say: str = "") -> T:
        """Run ``fn(con)`` in one committed transaction that rings the doorbell (its payload
        followed by ``say``) and the ``bells`` channels."""
        return self._run(fn, write=True, bells=bells, say=say)

    def read(self, fn: Callable[[Con], T]) -> T:
        """Run ``fn(con)`` on a pooled autocommit connection."""
        return self._run(fn, write=False)

    def _ring(self, channel: str) -> None:
        self.read(lambda con: con.execute("SELECT pg_notify(%s, %s)", [channel, self._token]))

    # -- the protocol: identity and holding ---------------------------------------------

    @property
    def location(self) -> str:
        return self._target.location

    @property
    def doorbell(self) -> PgBell:
        return self._bell

    @property
    def work_bell(self) -> PgBell:
        return self._work_bell

    @property
    def slot_bell(self) -> PgBell:
        return self._slot_bell

    def warm(self) -> None:
        """Make sure a pooled connection is open (the pool keeps one)."""
        self.read(lambda con: None)

    def is_warm(self) -> bool:
        return not self._closed

    @property
    def tenure(self) -> int:
        return 0  # others commit at any time: nothing is ever held exclusively

    def release(self) -> None:
        """Nothing to let go: a pooled connection blocks nobody."""

    def stop_waiting(self) -> None:
        """Nothing waits for another process to let go on a server."""

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._listener.close()
        self._pool.close(timeout=5.0)

    # -- the protocol: writes ------------------------------------------------------------

    def commit(self, changes: Sequence[Change]) -> list[Any]:
        channels = [WORK_CHANNEL] * rings.leaves_work(changes)
        channels += [SLOT_CHANNEL] * rings.ends_runs(changes)
        said = news.said(changes)  # what changed, for the server's live feed (bell.py)
        say, lease = ("" if said is None else f"\n{said}"), self.lease
        return self.transaction(lambda con: _apply(con, changes, lease), bells=channels, say=say)

    def _one(self, intent: Intent) -> Any:
        return self.commit([Change(intents=[intent])])[0]

    def register_engine(
        self, engine_id: str, *, pid: int, host: str, proc_start: str | None, now: float
    ) -> None:
        self.transaction(
            lambda con: ops.register_engine(con, engine_id, pid, host, proc_start, now)
        )

    def stop_engine(self, engine_id: str) -> None:
        def stop(con: Con) -> None:
            ops.release_runs(con, engine_id)
            ops.stop_engines(con, [engine_id])

        self.transaction(stop, bells=[WORK_CHANNEL])

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
        self.transaction(lambda con: ops.release_runs(con, engine_id), bells=[WORK_CHANNEL])

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

    def query_runs(self, query: RunQuery) -> RunPage:
        checked = query.checked()
        return self.read(lambda con: queries.query_runs(con, checked))

    def find_cached_step(
        self, task_kind: str, source_hash: str, input_hash: str
    ) -> CachedStep | None:
        return self.read(
            lambda con: retry.find_cached_step(con, task_kind, source_hash, input_hash)
        )

    # -- the protocol: reads -------------------------------------------------------------

    def live_engines(self) -> list[EngineRow]:
        return [row for row, _ in self.read(ops.live_engine_rows)]

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

    def queued_tasks(self, task_ids: Sequence[str]) -> list[tq.QueuedTask]:
        ids = list(task_ids)
        return self.read(lambda con: pg_tasks.read(con, ids))

    def get_run(self, workflow_id: str, *, with_events: bool = True) -> RunInfo | None:
        return self.read(lambda con: queries.get_run(con, workflow_id, with_events=with_events))

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
                lambda con: catalog.record_definitions(con, chosen, engine_id, served, now)
            )

    def list_definitions(
        self, *, type: str | None = None, kind: str | None = None, all_versions: bool = False
    ) -> list[DefinitionRow]:
        return self.read(
            lambda con: catalog.list_definitions(
                con, type=type, kind=kind, all_versions=all_versions
            )
        )

    def set_queue(self, queue: QueueRow, *, now: float) -> None:
        self.transaction(lambda con: queues.set_queue(con, queue, now), bells=[WORK_CHANNEL])

    def list_queues(self) -> list[QueueRow]:
        return self.read(queues.list_queues)

    def put_schedule(self, schedule: ScheduleRow) -> ScheduleRow:
        return self.transaction(
            lambda con: catalog.put_schedule(con, schedule), bells=[WORK_CHANNEL]
        )

    def list_schedules(self) -> list[ScheduleRow]:
        return self.read(catalog.list_schedules)

    def pause_schedule(self, name: str, paused: bool, *, next_fire: float | None) -> None:
        def pause(con: Con) -> None:
            if not catalog.set_paused(con, name, paused, next_fire):
                raise InvalidInput(catalog.no_schedule(name))  # rolls back: nothing rang

        self.transaction(pause, bells=[WORK_CHANNEL])

    def delete_schedule(self, name: str) -> None:
        def delete(con: Con) -> None:
            if not catalog.delete_schedule(con, name):
                raise InvalidInput(catalog.no_schedule(name))

        self.transaction(delete, bells=[WORK_CHANNEL])

    def fire_schedule(self, fire: FireSchedule) -> list[str] | None:
        def fire_slots(con: Con) -> list[str] | None:
            started = catalog.fire_schedule(con, fire)
            if started:
                con.execute("SELECT pg_notify(%s, %s)", [WORK_CHANNEL, self._token])
            return started

        return self.transaction(fire_slots)

    def sql(
        self, query: str, params: list[Any] | None = None, *, write: bool = False
    ) -> pandas.DataFrame:
        """Run a query over the store's tables (PostgreSQL's SQL; ``?`` or ``$1``
        placeholders) and return a pandas DataFrame.

        Read-only unless ``write`` (see ``readonly.py``): one SELECT, on a connection of
        its own, in a read-only transaction that is rolled back. With ``write=True`` the
        statements run in one committed transaction, for deliberate maintenance.

        Raises:
            InvalidInput: the query is not valid SQL, or (without ``write``) not a single
                read-only statement; nothing was changed.
            FlovynError: pandas is not installed.
        """
        try:
            import pandas  # noqa: F401
        except ImportError:
            raise FlovynError("fn.sql needs pandas: pip install 'flovyn_nb[sql]'") from None
        from flovyn_nb.store.postgres import readonly

        if self._closed:
            raise StoreError(f"the store {self.location} is closed", path=self.location)
        return readonly.run_query(self._target, query, params, write=write)


# -- applying changes ------------------------------------------------------------------------


def _apply(con: Con, changes: Sequence[Change], lease: float) -> list[Any]:
    results: list[Any] = [None] * len(changes)
    new_runs = [c.new_run for c in changes if c.new_run is not None]
    try:
        ops.insert_runs(con, new_runs)
    except psycopg.errors.UniqueViolation:
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
    ops.mark_promises_delivered(con, [p for c in changes for p in c.delivered])
    ops.time_out_pending(con, [p for c in changes for p in c.timed_out])
    for i, c in enumerate(changes):
        for intent in c.intents:
            results[i] = _do(con, intent, lease)
    return results


def _do(con: Con, intent: Intent, lease: float) -> Any:
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
            return _claim(con, intent, lease)
        case SettlePromise():
            return _settle(con, intent)
        case SendSignal():
            return _signal(con, intent)
        case CacheStep():
            retry.remember_step(con, intent)
        case ReopenRun():
            return retry.reopen_run(con, intent)
        case RequestCancel(workflow_id, reason):
            run = ops.find_run(con, workflow_id, lock="FOR NO KEY UPDATE")
            run = inbox_rules.active_run(run, workflow_id, "cancel")
            ops.request_cancel(con, run.id, reason)
            return run
        case tq.QueueTask() | tq.ClaimTasks() | tq.TaskProgress() | tq.FinishTask():
            return pg_tasks.do(con, intent, lease)
        case tq.CancelTasks():
            return pg_tasks.do(con, intent, lease)
    return None


def _claim(con: Con, claim: Claim, lease: float) -> Claimed:
    def living(row: EngineRow, age: float) -> bool:
        # On another host no PID can be checked: the lease, on the server's clock, decides.
        return claim.alive(row) and (row.host == HOST or age <= lease)

    return queues.claim(con, claim, living)


def _settle(con: Con, request: SettlePromise) -> PromiseRow:
    # The run's row is shared-locked: it cannot end (or be claimed) under the settle.
    run = ops.find_run(con, request.workflow_id, lock="FOR SHARE")
    row = None if run is None else ops.find_promise(con, run.id, request.name)
    now = request.now()  # inside the transaction, after the locks: the deadline is final
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
    if promise_id is None:
        raise _StartOver  # another settle (or the workflow) inserted the row first
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
