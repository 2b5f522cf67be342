"""Retry and fork: the writes that start a run again, and the engine's part in them.

A **retry** keeps the run (same workflow id, same execution id): it appends a
``WORKFLOW_RETRIED`` marker saying from which event the earlier attempt is superseded
(:func:`flovyn_nb.history.attempts.retry_point`) and reopens the run row (RUNNING, no
owner, see :class:`~flovyn_nb.store.ReopenRun`), in one commit. Whichever engine has the
workflow registered claims it, like a run whose owner died, and replays it: the steps
before the failed one answer from the record, the rest run with the code registered now.
A failed child run is retried with its parent, in the same commit.

A **fork** creates a new run whose history is a copy of the kept prefix of its origin
(renumbered, its ``WORKFLOW_STARTED`` naming the origin and the step), unowned, so it is
claimed and replayed the same way. The origin is not touched.

Both are plain store writes, so they work from a process without an engine (the CLI);
:class:`Attempts` adds the engine's part when there is one: clear what it remembers of
the run's end and claim the run at once.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flovyn_nb import serde
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.forkcheck import check_prefix
from flovyn_nb.engine.recovery import Recovery
from flovyn_nb.engine.threads import offload
from flovyn_nb.errors import InvalidInput, UnknownWorkflow
from flovyn_nb.history.attempts import Cut, attempt_of, cut, effective, retry_point, step_point
from flovyn_nb.history.events import Event
from flovyn_nb.model import EventType, RunStatus, WorkflowRetried
from flovyn_nb.store import (
    Change,
    EventRow,
    HistoryEvent,
    NewRun,
    ReopenRun,
    RunRow,
    Store,
)
from flovyn_nb.store.reopen_rules import check_reopen

E = EventType
RETRYABLE = (RunStatus.FAILED, RunStatus.CANCELLED)

__all__ = [
    "RETRYABLE",
    "Attempts",
    "Forked",
    "Retried",
    "check_retry",
    "fork_changes",
    "retry_changes",
]


@dataclass(frozen=True)
class Retried:
    """A retry as written: the run, its new attempt number and where it starts again."""

    workflow_id: str
    execution_id: str
    kind: str
    attempt: int
    cut: Cut
    reopened: tuple[str, ...]  # execution ids made runnable (the run, then failed children)
    prefix: tuple[HistoryEvent, ...] = ()  # the events the new attempt replays
    input: Any = None
    seed: str = ""  # the id its random numbers are seeded from


@dataclass(frozen=True)
class Forked:
    """A fork as written: the new run, its origin and the step it runs again from."""

    workflow_id: str
    execution_id: str
    kind: str
    source_workflow_id: str
    cut: Cut
    reused: int  # steps answered from the origin's record


def _unknown(store: Store, workflow_id: str) -> UnknownWorkflow:
    return UnknownWorkflow(
        f"no run with workflow id {workflow_id!r} in the store {store.location}",
        workflow_id=workflow_id,
    )


def _events(rows: Sequence[HistoryEvent]) -> list[Event]:
    return [Event(seq, E(kind), payload, ts) for seq, kind, payload, ts in rows]


def retry_changes(
    store: Store,
    workflow_id: str,
    *,
    reason: str,
    now: float,
    source_hash: str | None = None,
) -> tuple[Retried, list[Change]]:
    """The commit that retries a failed or cancelled run (and its failed child runs).

    Raises:
        UnknownWorkflow: no such run (names the store).
        InvalidInput: the run is not failed or cancelled (names its status).
    """
    row = store.find_run(workflow_id)
    if row is None:
        raise _unknown(store, workflow_id)
    check_reopen(row, RETRYABLE)  # said early; the commit checks it again
    every = _events(store.load_histories([row.id])[row.id])
    current = effective(every)
    point = retry_point(current)
    attempt = attempt_of(every) + 1
    marker = WorkflowRetried(
        attempt=attempt,
        from_seq=point.seq,
        from_step=point.step,
        reason=reason,
        source_hash=source_hash,
    )
    prefix = cut(current, point.seq)
    kept = {id(ev) for ev in prefix}
    # Promises whose record is superseded are forgotten: the new attempt makes them anew.
    resets = sorted(
        {
            str(ev.payload["promiseId"])
            for ev in current
            if id(ev) not in kept and isinstance(ev.payload.get("promiseId"), str)
        }
    )
    last = every[-1].seq if every else 0
    change = Change(
        events=[
            EventRow(
                row.id,
                last + 1,
                E.WORKFLOW_RETRIED.value,
                serde.dumps(marker.dump(), what="WORKFLOW_RETRIED event"),
                now,
            )
        ],
        intents=[ReopenRun(row.id, RETRYABLE, now, source_hash, tuple(resets))],
    )
    changes = [change]
    reopened = [row.id]
    if point.child is not None:
        initiated = next(
            (ev for ev in current if ev.payload.get("childExecutionId") == point.child), None
        )
        child_id = None if initiated is None else initiated.payload.get("childWorkflowId")
        if isinstance(child_id, str):
            child, more = retry_changes(
                store, child_id, reason=f"its parent {workflow_id!r} was retried", now=now
            )
            changes += more
            reopened += child.reopened
    seed = current[0].payload.get("seedFrom") if current else None
    retried = Retried(
        row.workflow_id,
        row.id,
        row.kind,
        attempt,
        point,
        tuple(reopened),
        tuple((ev.seq, ev.type.value, ev.payload, ev.ts) for ev in prefix),
        row.input,
        seed if isinstance(seed, str) else row.id,
    )
    return retried, changes


def check_retry(definition: WorkflowDefinition[Any], retried: Retried) -> None:
    """Refuse a retry the current code cannot replay (before anything is written).

    Raises:
        DeterminismViolation: the code no longer issues the reused steps (names the step).
        InvalidInput: the code raises while replaying them.
    """
    check_prefix(
        definition, retried.workflow_id, list(retried.prefix), retried.input, seed=retried.seed
    )


def fork_changes(
    store: Store,
    source_id: str,
    from_step: int | str,
    *,
    workflow_id: str | None,
    input: Any = None,
    input_given: bool = False,
    definition: WorkflowDefinition[Any] | None = None,
    now: float,
) -> tuple[Forked, list[HistoryEvent], Change, RunRow]:
    """The commit that forks ``source_id`` from ``from_step``, and the kept prefix (to
    check against the current code before committing).

    Raises:
        UnknownWorkflow: no such run (names the store).
        InvalidInput: no such step, a step out of range, a new id already taken, an input
            that does not fit the workflow.
    """
    source = store.find_run(source_id)
    if source is None:
        raise _unknown(store, source_id)
    if isinstance(from_step, bool) or not isinstance(from_step, int | str) or from_step == "":
        raise InvalidInput(
            f"from_step must be a step number (1-based) or a step name, got {from_step!r}"
        )
    every = _events(store.load_histories([source.id])[source.id])
    current = effective(every)
    try:
        point = step_point(current, from_step)
    except LookupError as exc:
        raise InvalidInput(f"cannot fork {source_id!r}: {exc.args[0]}") from None
    kept = cut(current, point.seq)
    execution_id = str(uuid.uuid4())
    new_id = workflow_id if workflow_id is not None else _free_fork_id(store, source_id)
    if not isinstance(new_id, str) or not new_id:
        raise InvalidInput("workflow_id of a fork must be a non-empty string")
    if store.find_run(new_id) is not None:
        raise InvalidInput(
            f"workflow id {new_id!r} is already used by another run: choose another id "
            "for the fork (or leave it out for the next free one)"
        )
    started = dict(kept[0].payload) if kept and kept[0].type is E.WORKFLOW_STARTED else {}
    input_json = source.input
    if input_given:
        what = f"input of workflow {source.kind!r}"
        input_json = storable(input, what=what)
        if definition is not None and definition.takes_input:
            serde.from_json(input_json, definition.input_type, what=what)
    source_hash = definition.source_hash if definition is not None else source.source_hash
    seed = started.get("seedFrom") or source.id
    started.update(
        workflowId=new_id,
        input=input_json,
        forkedFrom=source.workflow_id,
        fromStep=point.step,
        seedFrom=seed,
        sourceHash=source_hash,
    )
    started.pop("parentExecutionId", None)  # a fork is a run of its own
    rows: list[HistoryEvent] = []
    for seq, ev in enumerate(kept, start=1):
        payload = started if seq == 1 else _rehome(ev.payload, execution_id)
        rows.append((seq, ev.type.value, payload, ev.ts))
    new_run = NewRun(
        execution_id,
        new_id,
        source.kind,
        serde.dumps(input_json),
        source_hash,
        None,  # unowned: the engine that has the workflow registered claims it
        None,
        now,
    )
    change = Change(
        new_run=new_run,
        events=[
            EventRow(execution_id, seq, kind, json.dumps(payload), now)
            for seq, kind, payload, _ in rows
        ],
    )
    reused = sum(1 for _, kind, payload, _ in rows if _opens(kind, payload))
    forked = Forked(new_id, execution_id, source.kind, source.workflow_id, point, reused)
    return forked, rows, change, source


def _opens(kind: str, payload: dict[str, Any]) -> bool:
    from flovyn_nb.history.events import command_family

    return command_family(E(kind), payload) is not None


def _rehome(payload: dict[str, Any], execution_id: str) -> dict[str, Any]:
    """A copied event's payload, its promise id made the fork's own (``<run>:<name>``)."""
    promise_id = payload.get("promiseId")
    if not isinstance(promise_id, str) or ":" not in promise_id:
        return payload
    return {**payload, "promiseId": f"{execution_id}:{promise_id.split(':', 1)[1]}"}


def _free_fork_id(store: Store, source_id: str) -> str:
    n = 1
    while store.find_run(f"{source_id}-fork-{n}") is not None:
        n += 1
    return f"{source_id}-fork-{n}"


class Attempts(Recovery):
    """The engine's part in retries and forks (calls from other threads)."""

    def retry_run(self, workflow_id: str, *, reason: str = "retried") -> Retried:
        """Retry a failed or cancelled run (see the module docs); this engine claims it
        at once if it has its workflow registered."""
        self.thread.call(self.writer.flush)  # the run's end may still be on its way
        definition = None
        row = self.store.find_run(workflow_id)
        if row is not None:
            definition = self.registry.find_workflow(row.kind)
        retried, changes = retry_changes(
            self.store,
            workflow_id,
            reason=reason,
            now=self.clock.now(),
            source_hash=None if definition is None else definition.source_hash,
        )
        if definition is not None:
            check_retry(definition, retried)
        self.thread.call(self._commit_and_claim, changes, retried.reopened)
        return retried

    def fork_run(
        self,
        source_id: str,
        from_step: int | str,
        *,
        workflow_id: str | None = None,
        input: Any = None,
        input_given: bool = False,
    ) -> Forked:
        """Fork a run (see the module docs), after checking that the code registered now
        issues the reused steps again; this engine claims the fork at once."""
        self.thread.call(self.writer.flush)  # the origin's last steps may be on their way
        row = self.store.find_run(source_id)
        definition = None if row is None else self.registry.find_workflow(row.kind)
        forked, rows, change, _ = fork_changes(
            self.store,
            source_id,
            from_step,
            workflow_id=workflow_id,
            input=input,
            input_given=input_given,
            definition=definition,
            now=self.clock.now(),
        )
        if definition is not None:
            check_prefix(
                definition,
                forked.workflow_id,
                rows,
                rows[0][2].get("input"),
                seed=str(rows[0][2].get("seedFrom")),
            )
        self.thread.call(self._commit_and_claim, [change], (forked.execution_id,))
        return forked

    async def _commit_and_claim(self, changes: list[Change], execution_ids: Sequence[str]) -> None:
        await self.writer.flush()  # what this engine recorded of the run comes first
        await offload(functools.partial(self.store.commit, changes))
        with self._finished:  # its old end is no answer any more
            for execution_id in execution_ids:
                self._final.pop(execution_id, None)
        await self._recover()
