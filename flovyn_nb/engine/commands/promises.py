"""Promises: ``ctx.promise``, and their delivery (resolved, rejected, timed out)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio.lowlevel

from flovyn_nb import serde
from flovyn_nb.engine.commands.base import RunBase, iso, seconds_of, timed_out
from flovyn_nb.engine.waits import PromiseWait, Wait
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import InvalidInput, PromiseRejected
from flovyn_nb.history.replay import epoch_of
from flovyn_nb.model import (
    EventType,
    PromiseCreated,
    PromiseRejectedPayload,
    PromiseResolved,
    PromiseStatus,
    PromiseTimeoutPayload,
    RunStatus,
    _Payload,
)
from flovyn_nb.store import NewPromise, PromiseRow, ResetPromise, as_stored

E = EventType


class PromiseCommands(RunBase):
    """Promises: ``ctx.promise``, and their delivery (resolved, rejected, timed out)."""

    async def promise(self, name: str, timeout: timedelta | float | None, type_hint: Any) -> Any:
        if not isinstance(name, str) or not name:
            raise InvalidInput("a promise needs a non-empty name")
        seconds = seconds_of(timeout, "promise timeout")
        index = self._next("promise")
        rec = self._match("promise", index, name, f"promise({name!r})")
        if name in self.promise_names:
            raise InvalidInput(
                f"promise {name!r} was already used in this run; promise names are unique per "
                "run (add a counter or a step name, e.g. 'approval-2')"
            )
        self.promise_names.add(name)
        wait = Wait(name)
        promise_id = f"{self.execution_id}:{name}"
        if rec is not None:
            assert self.history is not None
            outcome = self.history.outcomes.get(rec.payload["promiseId"])
            if outcome is not None:
                await anyio.lowlevel.checkpoint()
                return self._promise_outcome(name, outcome.type, outcome.payload, type_hint)
            timeout_at = epoch_of(rec.payload.get("timeoutAt"))
            created = None
            self.move(RunStatus.WAITING)
        else:
            pending_at = self.host.bell_gen  # before the store is asked (see PromiseWait)
            now = self.host.clock.now()
            # to the microsecond, as the store keeps it: both judge the deadline alike
            timeout_at = None if seconds is None else as_stored(now + seconds)
            schema = serde.schema_of(type_hint)
            schema_json = None if schema is None else serde.dumps(schema)
            created = self.emit(
                E.PROMISE_CREATED,
                PromiseCreated(
                    promise_id=promise_id,
                    promise_name=name,
                    timeout_at=None if timeout_at is None else iso(timeout_at),
                    schema=schema,
                ),
                status=RunStatus.WAITING,
            )
            created.new_promise = NewPromise(
                promise_id, self.execution_id, name, timeout_at, schema_json, now
            )
        # Waiting (and the timeout's deadline) starts now, not when the creation is
        # committed: the writer commits in order, so a resolution or a timeout is always
        # written after the promise it settles.
        pending = self.promise_waits[name] = PromiseWait(wait, promise_id, type_hint, timeout_at)
        entry = None
        if timeout_at is not None:
            entry = self.host.deadlines.add(
                timeout_at, lambda: self.host.promise_timed_out(self.execution_id, name)
            )
        try:
            if created is not None:
                await self.host.writer.wait(created.ticket)
                if created.error is not None:
                    raise created.error
                row: PromiseRow = created.result
                if row.status is PromiseStatus.PENDING:
                    pending.pending_at = max(pending.pending_at or 0, pending_at)
                else:
                    self.host.inbox_changed(
                        self.execution_id
                    )  # resolved before we got here: deliver it
            else:
                self.host.inbox_changed(self.execution_id)
        except BaseException:
            self.promise_waits.pop(name, None)
            if entry is not None:
                entry.cancel()
            raise
        try:
            value = await self._block(wait)
        finally:
            self.promise_waits.pop(name, None)
            if entry is not None:
                entry.cancel()
        return value

    def _promise_outcome(
        self, name: str, kind: EventType, payload: dict[str, Any], type_hint: Any
    ) -> Any:
        if kind is E.PROMISE_RESOLVED:
            return serde.from_json(
                payload.get("value"), type_hint, what=f"value of promise {name!r}"
            )
        if kind is E.PROMISE_REJECTED:
            reason = payload.get("error", "")
            raise PromiseRejected(
                f"promise {name!r} was rejected: {reason}", name=name, reason=reason
            )
        raise timed_out(name)

    def time_out_promise(self, name: str) -> None:
        """The engine decided that the promise timed out (see Engine.promise_timed_out):
        deliver that; the store learns it with the PROMISE_TIMEOUT event."""
        pending = self.promise_waits.pop(name)
        self.emit(
            E.PROMISE_TIMEOUT,
            PromiseTimeoutPayload(promise_id=pending.promise_id, promise_name=name),
            status=RunStatus.RUNNING,
            write=Write(timed_out=[pending.promise_id]),
        )
        pending.wait.set_error(timed_out(name))

    def deliver_promise(self, row: PromiseRow, *, marked: bool = False) -> bool:
        """Hand a promise the store settled to the waiting code; False if nobody waits for
        it yet. ``marked``: the store row says it was delivered already."""
        pending = self.promise_waits.get(row.name)
        if pending is None:
            return False
        wait, promise_id, type_hint = pending.wait, pending.promise_id, pending.type_hint
        if row.status is PromiseStatus.RESOLVED:
            try:
                serde.from_json(row.value, type_hint, what=f"value of promise {row.name!r}")
            except Exception as exc:  # a validator of the type may raise anything
                # Resolved before the workflow declared its type: refuse and keep waiting.
                text = str(exc) if isinstance(exc, InvalidInput) else f"{type(exc).__name__}: {exc}"
                self.log_sink(None, "stderr", "ERROR", f"{text}; the promise is pending again")
                self.host.writer.submit(Write(intents=[ResetPromise(row.id)]))
                return True
            kind: EventType = E.PROMISE_RESOLVED
            payload: _Payload = PromiseResolved(
                promise_id=promise_id,
                promise_name=row.name,
                value=row.value,
                resolved_by=row.resolved_by,
            )
        elif row.status is PromiseStatus.REJECTED:
            kind = E.PROMISE_REJECTED
            payload = PromiseRejectedPayload(
                promise_id=promise_id,
                promise_name=row.name,
                error=row.error or "",
                resolved_by=row.resolved_by,
            )
        else:
            kind = E.PROMISE_TIMEOUT
            payload = PromiseTimeoutPayload(promise_id=promise_id, promise_name=row.name)
        self.promise_waits.pop(row.name, None)
        self.emit(
            kind,
            payload,
            status=RunStatus.RUNNING,
            write=Write(delivered=[] if marked else [row.id]),
        )
        try:
            wait.set_value(self._promise_outcome(row.name, kind, payload.dump(), type_hint))
        except Exception as exc:
            wait.set_error(exc)
        return True
