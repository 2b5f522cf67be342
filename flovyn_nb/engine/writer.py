"""Group commit: the engine's one writer to the store.

Runs hand writes (event rows, log rows, and typed intents) to the writer on the engine loop.
Writes are lazy: they wait up to ``linger`` for company, so a step's result, the next
step's start and other runs' steps share one transaction. Whoever needs durability now
(before a side effect, before answering a caller) awaits :meth:`Writer.wait` or
:meth:`Writer.commit`, which flush at once — except that a commit callers wait for first
gives the callers the previous commit answered up to ``GATHER`` to come back with their
next write (threads starting runs in a loop then share commits instead of taking turns).
One thread does all commits, in order.

A run's row (``workflow_executions``) follows its events lazily: its events say when it
waits and how it ended, so :meth:`Writer.note_status` only marks the run, and its row is
updated at most ``STATUS_DELAY`` later, in one set-based UPDATE with every other run that
moved or ended meanwhile. A run that moves back before then costs no row update at all,
and one that ends gets a single update. :meth:`Writer.flush` (queries, stop) writes them
at once; recovery repairs a row whose terminal event was committed before a crash.

A store held by another process for longer than its ``lock_timeout`` (a plain DuckDB
client does not let go when asked) fails only the writes somebody is answering for, such
as a start or a resolve, whose caller gets :class:`StoreLocked` and nothing changes. The
runs' own record (events, logs, run rows) is never dropped: the writer keeps it, in order,
and tries again until the store is free, while :attr:`Writer.blocked` says why it waits. A
run that needs its record durable before a side effect waits too; nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

from flovyn_nb.engine.threads import offload
from flovyn_nb.errors import StoreLocked
from flovyn_nb.store import Change, RunUpdate, Store

# Batches up to this many writes commit on the loop; bigger ones in a thread.
SMALL_BATCH = 4
# Between tries to write the record to a store another process keeps locked (each try
# itself waits up to the store's lock_timeout, knocking).
RETRY_PAUSE = 0.05
# How long a run row may lag behind its run's events (less than the store's idle release,
# so the update does not reopen the file).
STATUS_DELAY = 0.05
# How long a commit that callers wait for may wait for the callers the previous commit
# answered, while they come back with their next write (threads starting runs in a loop):
# then one commit serves them all instead of every other one.
GATHER = 0.002


@dataclass(eq=False, slots=True)
class Write(Change):
    """A change (the rows and intents to commit) and who waits for it."""

    result: Any = None
    error: BaseException | None = None
    ticket: int = 0
    # Fail (instead of waiting for the store) when it stays locked: its caller answers.
    fail_if_locked: bool = False
    caller: int = 0  # the thread blocked until it commits (its ident), if any


class Writer:
    def __init__(self, store: Store, *, linger: float = 0.02) -> None:
        self._store = store
        self._linger = linger
        self._pending: list[Write] = []
        self._submitted = 0
        self._committed = 0  # every write up to this ticket is done
        self._retry: list[Write] = []  # the record, kept while the store is locked
        self.blocked: StoreLocked | None = None  # why the record is not being written now
        self._locked_by: StoreLocked | None = None
        self.on_blocked: Callable[[StoreLocked], None] | None = None
        self._committing = False
        self._has_work = anyio.Event()
        self._urgent = anyio.Event()
        self._progress = anyio.Event()
        self._limiter = anyio.CapacityLimiter(1)
        # runs whose row status lags: execution id -> what to write (None: nothing now)
        self._statuses: dict[str, Callable[[], RunUpdate | None]] = {}
        self._statuses_since = 0.0
        self._served: set[int] = set()  # the caller threads the last commit answered
        self.commits = 0  # transactions committed (for tests and benchmarks)

    @property
    def unwritten(self) -> int:
        """Writes not yet done."""
        return self._submitted - self._committed

    @property
    def idle(self) -> bool:
        return not (self._pending or self._committing or self._statuses or self._retry)

    def note_status(self, execution_id: str, update: Callable[[], RunUpdate | None]) -> None:
        """A run's row lags (the run moved between RUNNING and WAITING, or ended):
        ``update()``, called when the row is written (at most ``STATUS_DELAY`` from now),
        says what to write, if anything."""
        if not self._statuses:
            self._statuses_since = anyio.current_time()
        self._statuses[execution_id] = update
        self._has_work.set()

    def drop_status(self, execution_id: str) -> None:
        """Leave the run row as it is (its run was handed back to the store)."""
        self._statuses.pop(execution_id, None)

    def _submit_statuses(self) -> None:
        updates = [u for take in self._statuses.values() if (u := take()) is not None]
        self._statuses.clear()
        if updates:
            self.submit(Write(statuses=updates))

    def submit(self, write: Write, *, urgent: bool = False) -> int:
        """Queue a write; returns its ticket (durable once ``committed >= ticket``).

        ``urgent`` commits without lingering, though nobody waits for it.
        """
        self._pending.append(write)
        self._submitted += 1
        write.ticket = self._submitted
        self._has_work.set()
        if urgent:
            self._urgent.set()
        return self._submitted

    async def wait(self, ticket: int, *, unless_blocked: bool = False) -> None:
        """Return once every write up to ``ticket`` is done.

        ``unless_blocked``: raise :attr:`blocked` instead of waiting for the store.
        """
        while self._committed < ticket:
            if unless_blocked and self.blocked is not None:
                raise self.blocked
            self._urgent.set()
            self._has_work.set()
            await self._progress.wait()

    async def flush(self) -> None:
        """Return once everything submitted so far is committed, run rows included.

        Raises:
            StoreLocked: the store is held by another process and the record waits for it
                (a query would find the file locked too; stopping leaves the rest unwritten).
        """
        self._submit_statuses()
        await self.wait(self._submitted, unless_blocked=True)

    async def commit(
        self, write: Write, *, rows_current: bool = False, wait_if_locked: bool = False
    ) -> Any:
        """Queue a write, flush now, and return its result (or raise; see ``Store.commit``).

        ``rows_current``: the write reads run rows (e.g. whether a run has ended), so the
        lagging ones are updated first, in the same transaction.
        ``wait_if_locked``: the write belongs to a run's record: while another process
        keeps the store locked it waits (see the module docs) instead of failing with
        :class:`StoreLocked`.
        """
        write.fail_if_locked = not wait_if_locked
        if rows_current:
            self._submit_statuses()
        self.submit(write, urgent=True)
        while not self._done(write):
            await self._progress.wait()
        if write.error is not None:
            raise write.error
        return write.result

    async def run(self) -> None:
        while True:
            await self._has_work.wait()
            if not self._urgent.is_set():
                delay = self._linger
                if not self._pending:  # only lagging run rows: they wait longer
                    delay = self._statuses_since + STATUS_DELAY - anyio.current_time()
                with anyio.move_on_after(delay):
                    await self._urgent.wait()
            await self._gather_callers()
            if self._statuses and (anyio.current_time() >= self._statuses_since + STATUS_DELAY):
                self._submit_statuses()
            batch, self._pending = self._retry + self._pending, []
            self._served = {write.caller for write in batch if write.caller}
            self._retry = []
            self._has_work = anyio.Event()
            self._urgent = anyio.Event()
            if self._statuses:
                self._has_work.set()  # come back for them when they are due
            if batch:
                self._committing = True
                retry: list[Write] = []
                try:
                    if len(batch) <= SMALL_BATCH and self._store.is_warm():
                        # The file is ours already and the batch is small: committing takes
                        # about a millisecond, less than handing it to a thread and back.
                        # A big batch commits in a thread: DuckDB releases the GIL, so the
                        # loop prepares the next batch meanwhile.
                        retry = self._commit_batch(batch)
                    else:  # opening may wait for another process: keep the loop free
                        retry = await offload(self._commit_batch, batch, limiter=self._limiter)
                except Exception as exc:  # a fault outside the store: nothing counts as durable
                    for write in batch:
                        if write.error is None:
                            write.error = exc
                finally:
                    self._committing = False
                    self._settled(batch, retry)
                if retry:
                    await anyio.sleep(RETRY_PAUSE)

    async def _gather_callers(self) -> None:
        """Callers wait for this commit, and callers the previous one answered are on their
        way back (not here yet): give them up to GATHER to join. A caller alone, or one
        that comes back to its own next write, never waits (nobody else is expected)."""
        waiting = {write.caller for write in self._pending if write.caller}
        if not waiting or not (self._served - waiting):
            return
        expected = self._served | waiting
        with anyio.move_on_after(GATHER):
            while not expected <= {write.caller for write in self._pending if write.caller}:
                self._has_work = anyio.Event()
                await self._has_work.wait()

    def _done(self, write: Write) -> bool:
        """Committed, or failed (``error`` says why). A failed write may be done before
        earlier writes that are kept to try again."""
        return write.ticket <= self._committed or write.error is not None

    def _settled(self, batch: list[Write], retry: list[Write]) -> None:
        """The batch is done, except the writes kept to try again."""
        self._retry = retry
        self._committed = retry[0].ticket - 1 if retry else batch[-1].ticket
        if retry:
            self._has_work.set()
            locked_by = self._locked_by
            if self.blocked is None and locked_by is not None:
                self.blocked = locked_by
                if self.on_blocked is not None:
                    self.on_blocked(locked_by)
        elif self.blocked is not None:
            self.blocked = None  # the store is ours again: the record caught up
        self._progress.set()
        self._progress = anyio.Event()

    def _commit_batch(self, batch: list[Write]) -> list[Write]:
        """Commit the batch; return the writes to try again (the store stayed locked)."""
        try:
            self._record(batch, self._store.commit(batch))
            self.commits += 1
            return []
        except StoreLocked as exc:
            return self._locked(batch, exc)
        except Exception:
            if len(batch) == 1:
                self._fail(batch)
                return []
        # One write spoiled the batch: commit the others one by one.
        for i, write in enumerate(batch):
            try:
                self._record([write], self._store.commit([write]))
                self.commits += 1
            except StoreLocked as exc:
                return self._locked(batch[i:], exc)
            except Exception:
                self._fail([write])
        return []

    @staticmethod
    def _record(batch: list[Write], results: list[Any]) -> None:
        for write, result in zip(batch, results, strict=True):
            write.result = result

    def _locked(self, batch: list[Write], exc: StoreLocked) -> list[Write]:
        """Fail the writes whose callers answer for them; keep the record to try again."""
        for write in batch:
            if write.fail_if_locked:
                write.error = exc
            write.result = None
        self._locked_by = exc
        return [write for write in batch if not write.fail_if_locked]

    @staticmethod
    def _fail(batch: list[Write]) -> None:
        import sys

        error = sys.exc_info()[1]
        for write in batch:
            write.error = error
