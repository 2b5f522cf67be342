"""Recovery: claiming the runs this engine can execute (at start, on each registration,
and when an owner died) and replaying them from their histories."""

from __future__ import annotations

from typing import Any

import anyio

from flovyn_nb import serde
from flovyn_nb.engine import ownership
from flovyn_nb.engine.run import Run
from flovyn_nb.engine.timeouts import PromiseTimeouts
from flovyn_nb.engine.writer import Write
from flovyn_nb.history.replay import History, Recorded
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.store import Claimed, RunRow, RunUpdate

# How long a claim waits for more wishes to join it (see Recovery._claim_loop).
CLAIM_LINGER = 0.05


class Recovery(PromiseTimeouts):
    """Claims runs (at start, on registrations, from dead owners) and replays them."""

    def _on_registered(self, definition: Any) -> None:
        """A definition was registered (in any thread): runs of it may be ours to resume."""
        if not self.thread.running:
            return
        if self.thread.in_loop():
            self.start_soon(self._record_definitions, [definition])
            self.start_soon(self._recover)
        else:
            self.thread.spawn(self._record_definitions, [definition])
            self.thread.spawn(self._recover)

    def want_claim(self) -> None:
        """Claim soon (on the loop): runs may have become claimable. Claims never overlap;
        a wish during one makes one more after it."""
        if self._claiming:
            self._claim_again = True
            return
        self._claiming = True
        self.start_soon(self._claim_loop)

    def claim_soon(self) -> None:
        """From any thread: claim soon and look at the schedules again (this process
        enqueued a run or changed a schedule: its own rings do not wake it)."""
        if self.thread.running:
            self.thread.spawn(self._want_claim_on_loop)

    async def _want_claim_on_loop(self) -> None:
        self.want_claim()
        self.scheduler.poke()

    async def _claim_loop(self) -> None:
        try:
            while True:
                # Wishes come in bursts (a notebook starting runs in a loop rings the work
                # bell once per run): one claim after a short pause takes them together,
                # instead of taking the store away from the starter once per run.
                await anyio.sleep(CLAIM_LINGER)
                self._claim_again = False
                await self._recover()
                if not self._claim_again:
                    return
        finally:
            self._claiming = False

    def run_finished(
        self,
        execution_id: str,
        workflow_id: str,
        parent_id: str | None,
        status: RunStatus,
        output: Any,
        error: Any,
    ) -> None:
        super().run_finished(execution_id, workflow_id, parent_id, status, output, error)
        if self._backlog:  # runs were left waiting for a free slot: this may be one
            self.want_claim()

    async def _recover(self) -> None:
        kinds = self.registry.workflow_names()
        now = self.clock.now()
        limit = None
        if self.max_runs is not None:
            limit = self.max_runs - len(self.runs)
            if limit <= 0:
                self._backlog = True
                self.remote.claim_soon()  # queued tasks do not count against max_runs
                return
        if self.draining:
            return
        self.remote.claim_with_runs()  # queued tasks wait for claimers as runs do
        claim: Claimed = await self.writer.commit(
            Write(
                intents=[
                    ownership.claim(
                        engine_id=self.id,
                        kinds=kinds,
                        now=now,
                        stale_after=self.stale_after,
                        limit=limit,
                        queues=self.queues,
                    )
                ]
            )
        )
        self._backlog = claim.more
        if claim.retry_at is not None and claim.retry_at != self._retry_at:
            # A queue's rate limit lets the next run go then: claim at that deadline.
            self._retry_at = claim.retry_at
            self.deadlines.add(claim.retry_at, self.want_claim)
        self._note_peers(claim.engines)
        if claim.runs:
            with self._finished:  # a run that ended here and was retried elsewhere
                for row, _ in claim.runs:
                    self._final.pop(row.id, None)
        for row, events in claim.runs:
            definition = self.registry.find_workflow(row.kind)
            if definition is None or row.id in self.runs:
                continue
            self._adopted(row)
            history = History(row.workflow_id, events)
            if history.ended is not None:
                self._repair_ended(row.id, history.ended)
                continue
            run = Run(
                self,
                execution_id=row.id,
                workflow_id=row.workflow_id,
                definition=definition,
                input_json=row.input,
                history=history,
                next_seq=history.last_seq + 1,
                parent_id=row.parent_id,
            )
            run.row_status = row.status
            run.queue = row.queue
            if row.status is not RunStatus.RUNNING:  # e.g. WAITING: say so if replay moves on
                self.writer.note_status(run.execution_id, run.row_update)
            if history.last_seq == 0:  # the process died before the start event was written
                run.emit_started()
            self._adopt(run)
            self.inbox_changed(run.execution_id)

    def _adopted(self, row: RunRow) -> None:
        """Tell the listeners (the change feed) that a run was claimed: ``data`` is its
        workflow id (a worker logs it)."""
        for listener in self._listeners:
            self._notify(listener, "claimed", row.id, row.workflow_id)

    def _repair_ended(self, execution_id: str, ended: Recorded) -> None:
        """The run ended but the process died before its row said so: say it now."""
        payload = ended.payload
        status = {
            EventType.WORKFLOW_COMPLETED: RunStatus.COMPLETED,
            EventType.WORKFLOW_CANCELLED: RunStatus.CANCELLED,
        }.get(ended.type, RunStatus.FAILED)
        output = payload.get("output")
        error = payload.get("error")
        self.writer.submit(
            Write(
                run_update=RunUpdate(
                    execution_id,
                    status,
                    ended.ts,
                    None if output is None else serde.dumps(output),
                    None if error is None else serde.dumps(error),
                )
            ),
            urgent=True,
        )
