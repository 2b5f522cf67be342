"""The inbox: what other threads and processes deliver to runs (promise settlements,
signals, cancel requests), written to the store and handed to the runs that wait."""

from __future__ import annotations

from typing import Any

import anyio

from flovyn_nb import serde
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.runs import RunRegistry
from flovyn_nb.engine.threads import offload
from flovyn_nb.engine.writer import Write
from flovyn_nb.model import PromiseStatus
from flovyn_nb.store import PromiseRow, RequestCancel, SendSignal, SettlePromise


class Inbox(RunRegistry):
    """Deliveries to runs: promise settlements, signals and cancel requests."""

    def inbox_changed(self, execution_id: str) -> None:
        """The run waits on something new: scan its inbox (promises, signals)."""
        self._dirty.add(execution_id)
        self._inbox_event.set()

    async def _inbox_loop(self) -> None:
        while True:
            await self._inbox_event.wait()
            self._inbox_event = anyio.Event()
            ids, self._dirty = sorted(self._dirty & self.runs.keys()), set()
            if not ids:
                continue
            gen = self.bell_gen  # what the scan reads is at least this fresh
            try:
                inbox = await offload(self.store.undelivered, ids)
            except Exception as exc:
                self._internal_error(f"inbox scan: {exc!r}")
                continue
            for promise in inbox.promises:
                run = self.runs.get(promise.execution_id)
                if run is not None:
                    run.deliver_promise(promise)
            for execution_id in ids:  # the promises still awaited were pending when read
                run = self.runs.get(execution_id)
                for pending in run.promise_waits.values() if run is not None else ():
                    pending.pending_at = max(pending.pending_at or 0, gen)
            for signal in inbox.signals:
                run = self.runs.get(signal.execution_id)
                if run is not None:
                    run.deliver_signal(signal.id, signal.name, signal.value)
            for execution_id in inbox.cancels:
                run = self.runs.get(execution_id)
                if run is not None and not run.cancel_requested:
                    reason = (
                        inbox.cancel_reasons.get(execution_id) or "requested from another process"
                    )
                    self.start_soon(run.request_cancel, reason)

    async def _settle(
        self,
        workflow_id: str,
        name: str,
        value: Any,
        reject: bool,
        reason: str,
        resolved_by: str,
        allow_early: bool = True,
    ) -> None:
        run = self._live(workflow_id)
        validated = False
        if run is not None and not reject and name in run.promise_waits:
            type_hint = run.promise_waits[name].type_hint
            what = f"value for promise {name!r}"
            serde.from_json(storable(value, what=what), type_hint, what=what)
            validated = True
        status = PromiseStatus.REJECTED if reject else PromiseStatus.RESOLVED
        key = (workflow_id, name)  # its timeout, if due meanwhile, asks the store
        self._settling[key] += 1
        try:
            row: PromiseRow = await self.writer.commit(
                Write(
                    intents=[
                        SettlePromise(
                            workflow_id=workflow_id,
                            name=name,
                            status=status,
                            value=value,
                            reason=reason if reject else None,
                            resolved_by=resolved_by,
                            now=self.clock.now,  # called in the transaction: judges the deadline
                            validated=validated,
                            require_existing=not allow_early,
                        )
                    ]
                ),
                rows_current=True,
            )
        finally:
            self._settling[key] -= 1
            if not self._settling[key]:
                del self._settling[key]
        if run is not None:
            run.deliver_promise(row)

    async def _signal(self, workflow_id: str, name: str, value: Any) -> None:
        now = self.clock.now()
        await self.writer.commit(
            Write(intents=[SendSignal(workflow_id=workflow_id, name=name, value=value, now=now)]),
            rows_current=True,
        )
        run = self._live(workflow_id)
        if run is not None:
            self.inbox_changed(run.execution_id)

    async def _cancel(self, workflow_id: str, reason: str = "") -> None:
        run = self._live(workflow_id)
        if run is not None:
            await run.request_cancel(reason or "requested")
            return
        await self.writer.commit(
            Write(intents=[RequestCancel(workflow_id, reason)]),
            rows_current=True,
        )
