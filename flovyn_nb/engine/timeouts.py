"""Promise timeouts: deciding, at the deadline, whether a resolve could have come first.

A resolve at or after the deadline fails in the store (``inbox_rules.check_settle``); when
no resolve can have gone unseen the timeout is decided on the loop, otherwise the store
settles the deadlines that passed together in one statement and says which came first.
"""

from __future__ import annotations

import threading

import anyio

from flovyn_nb.engine.peers import Peers
from flovyn_nb.engine.run import Run
from flovyn_nb.engine.waits import PromiseWait
from flovyn_nb.engine.writer import Write
from flovyn_nb.store import PromiseRow, TimeOutPromises


class PromiseTimeouts(Peers):
    """Decides promise timeouts at their deadline (see the module's docstring)."""

    def promise_timed_out(self, execution_id: str, name: str) -> None:
        """A promise's deadline passed (called by the deadline queue).

        A resolve at or after the deadline fails in the store (``inbox_rules.check_settle``),
        so the promise timed out unless a resolve committed before it. When no such resolve
        can have gone unseen, the timeout is decided here and now, and written with its
        event; otherwise the store settles it (deadlines that pass together, in one
        statement) and says which came first.
        """
        run = self.runs.get(execution_id)
        pending = None if run is None else run.promise_waits.get(name)
        if run is None or pending is None:
            return  # settled meanwhile
        if self._timeout_is_ours(run.workflow_id, name, pending):
            run.time_out_promise(name)
            return
        self._due_timeouts.append((run, pending.promise_id))
        self._timeouts_event.set()

    def _timeout_is_ours(self, workflow_id: str, name: str, pending: PromiseWait) -> bool:
        """Whether nothing can have settled the promise without this engine knowing:
        - no resolve from this process is on its way to the store;
        - this process holds the store file, so every other process that committed before
          now has rung the doorbell already (it rings before it lets go of the file);
        - no other process rang since the store last said the promise was pending.
        A resolve that commits later comes after the deadline and fails."""
        if (
            pending.pending_at is None
            or pending.timeout_at is None
            or self.clock.now() < pending.timeout_at
            or (workflow_id, name) in self._settling
        ):
            return False
        tenure = self.store.tenure
        if not tenure:
            return False
        if tenure != self._bell_seen_in:
            # First look while holding the file this time: later, nobody else can commit
            # until it is let go (a wave of timeouts then costs one ``stat``, not one each).
            self._observe_bell()
            self._bell_seen_in = tenure
        return pending.pending_at == self.bell_gen

    async def _timeouts_loop(self) -> None:
        batch: _TimeoutBatch | None = None
        while True:
            await self._timeouts_event.wait()
            self._timeouts_event = anyio.Event()
            due, self._due_timeouts = self._due_timeouts, []
            # Timeouts that fall due while a batch waits for the writer join it; once it is
            # being written, a new batch starts (one statement per commit, never waiting
            # for the previous batch to be delivered).
            if batch is None or not batch.add(due):
                batch = _TimeoutBatch(due)
                self.start_soon(self._time_out, batch)

    async def _time_out(self, batch: _TimeoutBatch) -> None:
        try:
            rows: list[PromiseRow] = await self.writer.commit(
                Write(intents=[TimeOutPromises(batch.take)]),
                wait_if_locked=True,
            )
        except Exception as exc:
            self._internal_error(f"promise timeouts: {exc!r}")
            return
        for row in rows:
            run = batch.runs.get(row.id)
            if run is not None and row.execution_id in self.runs:
                run.deliver_promise(row, marked=row.delivered)


class _TimeoutBatch:
    """Promise timeouts written by one statement; open for more until the writer runs it."""

    def __init__(self, due: list[tuple[Run, str]]) -> None:
        self.runs = {promise_id: run for run, promise_id in due}
        self._lock = threading.Lock()  # the writer may run it in its thread
        self._taken = False

    def add(self, due: list[tuple[Run, str]]) -> bool:
        with self._lock:
            if self._taken:
                return False
            self.runs.update((promise_id, run) for run, promise_id in due)
            return True

    def take(self) -> list[str]:
        """The promise ids to time out (the store calls this in its transaction): the
        batch is closed from now on."""
        with self._lock:
            self._taken = True
            return list(self.runs)
