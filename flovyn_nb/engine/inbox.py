"""What any process may write into a run it does not execute: its inbox.

Resolving or rejecting a promise, sending a signal and asking for cancellation only write
the ``promises``/``signals`` tables or the cancel flag, in one transaction that checks
everything first (so bad input changes nothing). The run's owner notices (directly when
it lives in the same process, through the doorbell otherwise), appends the matching event
to the history and wakes the workflow.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from flovyn_nb import serde
from flovyn_nb.engine.faults import storable
from flovyn_nb.errors import (
    InvalidInput,
    PromiseAlreadyResolved,
    UnknownPromise,
    UnknownWorkflow,
)
from flovyn_nb.model import PromiseStatus
from flovyn_nb.store import ops
from flovyn_nb.store.ops import Con, PromiseRow, RunRow


def _find_run(con: Con, workflow_id: str) -> RunRow:
    run = ops.find_run(con, workflow_id)
    if run is None:
        raise UnknownWorkflow(
            f"no run with workflow id {workflow_id!r} in this store; list runs with "
            "fn.list_runs() or `flovyn-nb runs`",
            workflow_id=workflow_id,
        )
    return run


def _active_run(con: Con, workflow_id: str, action: str, run: RunRow | None = None) -> RunRow:
    run = run or _find_run(con, workflow_id)
    if run.status.is_terminal:
        raise InvalidInput(
            f"run {workflow_id!r} already ended ({run.status.value}); there is nothing to {action}"
        )
    return run


def settle_promise(
    con: Con,
    *,
    workflow_id: str,
    name: str,
    status: PromiseStatus,
    value: Any,
    reason: str | None,
    resolved_by: str,
    now: float,
    validated: bool,
    require_existing: bool = False,
) -> PromiseRow:
    """Resolve or reject a promise by (workflow id, name). Returns the settled row.

    Args:
        now: the time, taken inside the transaction: at or after the promise's deadline
            the resolve fails (it timed out, even if nobody has written so yet).
        validated: the caller already checked ``value`` against the promise's Python type;
            otherwise it is checked against the JSON schema stored with the promise.
        require_existing: refuse promises the workflow has not reached yet.

    Raises:
        UnknownWorkflow, UnknownPromise, PromiseAlreadyResolved, InvalidInput.
    """
    action = "resolve" if status is PromiseStatus.RESOLVED else "reject"
    run = _find_run(con, workflow_id)
    row = ops.find_promise(con, run.id, name)
    if row is not None and row.status is not PromiseStatus.PENDING:
        raise PromiseAlreadyResolved(
            f"promise {name!r} of run {workflow_id!r} is already "
            + row.status.value.lower().replace("_", " ")
            + (f" (by {row.resolved_by})" if row.resolved_by not in (None, "timeout") else "")
            + "; its first value stays",
            workflow_id=workflow_id,
            name=name,
            status=row.status.value,
        )
    if row is not None and row.timeout_at is not None and now >= row.timeout_at:
        # Past its deadline a promise has timed out, whether or not its owner has written
        # so yet: the owner decides timeouts without asking the store (see Engine).
        raise PromiseAlreadyResolved(
            f"promise {name!r} of run {workflow_id!r} timed out at "
            f"{datetime.fromtimestamp(row.timeout_at, UTC).isoformat(timespec='milliseconds')}"
            "; a late value is not taken",
            workflow_id=workflow_id,
            name=name,
            status=PromiseStatus.TIMED_OUT.value,
        )
    _active_run(con, workflow_id, f"{action} (promise {name!r})", run)
    if row is None and require_existing:
        raise UnknownPromise(f"run {workflow_id!r} has no promise named {name!r}")
    value_json = None
    if status is PromiseStatus.RESOLVED:
        data = storable(value, what=f"value for promise {name!r}")
        if row is not None and not validated:
            serde.validate_against_schema(data, row.schema, what=f"value for promise {name!r}")
        value_json = serde.dumps(data)
    promise_id = ops.settle_promise(
        con,
        promise_id=None if row is None else row.id,
        execution_id=run.id,
        name=name,
        status=status,
        value_json=value_json,
        error=reason,
        resolved_by=resolved_by,
        now=now,
    )
    return PromiseRow(
        id=promise_id,
        execution_id=run.id,
        name=name,
        status=status,
        timeout_at=None if row is None else row.timeout_at,
        schema=None if row is None else row.schema,
        value=None if value_json is None else json.loads(value_json),
        error=reason,
        resolved_by=resolved_by,
        delivered=False,
    )


def send_signal(con: Con, *, workflow_id: str, name: str, value: Any, now: float) -> RunRow:
    run = _active_run(con, workflow_id, f"signal ({name!r})")
    if not name:
        raise InvalidInput("a signal needs a non-empty name")
    ops.insert_signal(
        con,
        signal_id=str(uuid.uuid4()),
        execution_id=run.id,
        name=name,
        value_json=serde.dumps(storable(value, what=f"value of signal {name!r}")),
        now=now,
    )
    return run


def request_cancel(con: Con, *, workflow_id: str) -> RunRow:
    run = _active_run(con, workflow_id, "cancel")
    ops.request_cancel(con, run.id)
    return run
