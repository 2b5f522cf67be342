"""Applying a batch of changes to the DuckDB store inside one transaction: each intent
of the Store protocol as its statements (the backend decides the transaction)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

import duckdb

from flovyn_nb.errors import DuplicateWorkflowId
from flovyn_nb.store import inbox_rules
from flovyn_nb.store.duckdb import (
    claims,
    ops,
    reopen,
    stepcache,
    taskqueue,
)
from flovyn_nb.store.protocol import (
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
    PromiseRow,
    RunRow,
)
from flovyn_nb.store.taskqueue import (
    CancelTasks,
    ClaimTasks,
    FinishTask,
    QueueTask,
    TaskProgress,
)

Con = duckdb.DuckDBPyConnection


def one_statement(changes: Sequence[Change]) -> bool:
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


def apply(con: Con, changes: Sequence[Change]) -> list[Any]:
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
        case QueueTask() | ClaimTasks() | TaskProgress() | FinishTask() | CancelTasks():
            return taskqueue.do(con, intent)
    return None


def _claim(con: Con, claim: Claim) -> Claimed:
    engines = ops.live_engine_rows(con)
    living = [e for e in engines if e.id == claim.engine_id or claim.alive(e)]
    alive = [e.id for e in living]
    for dead in (e for e in engines if e.id not in alive):
        ops.stop_engine(con, dead.id)
    now = time.time() if claim.now is None else claim.now
    picked = claims.pick(
        con,
        engine_id=claim.engine_id,
        kinds=claim.kinds,
        queues=claim.queues,
        alive=alive,
        now=now,
    )
    candidates = picked.runs[: claim.limit]
    taken = claims.take(con, [row.id for row in candidates], claim.engine_id, alive, now)
    rows = [row for row in candidates if row.id in taken]
    histories = ops.load_histories(con, [row.id for row in rows])
    more = picked.held_back or len(candidates) < len(picked.runs)
    retry_at = claims.rate_retry_at(con, claim.queues, now) if picked.held_back else None
    return Claimed([(row, histories[row.id]) for row in rows], living, more, retry_at)


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
