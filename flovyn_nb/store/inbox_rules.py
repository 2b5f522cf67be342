"""The rules for writing into a run's inbox, the same for every backend.

Resolving or rejecting a promise, sending a signal and asking for cancellation only write
the ``promises``/``signals`` tables or the cancel flag, in one transaction that checks
everything first (so bad input changes nothing). A backend reads the rows, calls these
pure functions inside its transaction, then writes. The run's owner notices (directly
when it lives in the same process, through the doorbell otherwise), appends the matching
event to the history and wakes the workflow.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flovyn_nb import serde
from flovyn_nb.errors import InvalidInput, PromiseAlreadyResolved, UnknownPromise, UnknownWorkflow
from flovyn_nb.model import PromiseStatus
from flovyn_nb.store.protocol import SendSignal, SettlePromise
from flovyn_nb.store.rows import PromiseRow, RunRow


def known_run(run: RunRow | None, workflow_id: str) -> RunRow:
    """Raises: UnknownWorkflow (``run`` is None)."""
    if run is None:
        raise UnknownWorkflow(
            f"no run with workflow id {workflow_id!r} in this store; list runs with "
            "fn.list_runs() or `flovyn-nb runs`",
            workflow_id=workflow_id,
        )
    return run


def active_run(run: RunRow | None, workflow_id: str, action: str) -> RunRow:
    """Raises: UnknownWorkflow, InvalidInput (the run ended)."""
    run = known_run(run, workflow_id)
    if run.status.is_terminal:
        raise InvalidInput(
            f"run {workflow_id!r} already ended ({run.status.value}); there is nothing to {action}"
        )
    return run


def check_settle(
    request: SettlePromise, run: RunRow | None, row: PromiseRow | None, now: float
) -> str | None:
    """Whether the promise may be settled as asked; returns the value's JSON text (None
    for a rejection).

    Args:
        run: the run named by the request, as stored.
        row: its promise of that name, if the workflow reached it (or a resolver was early).
        now: the time, taken inside the transaction: at or after the promise's deadline
            the settle fails (it timed out, even if nobody has written so yet).

    Raises:
        UnknownWorkflow, UnknownPromise, PromiseAlreadyResolved, InvalidInput.
    """
    workflow_id, name = request.workflow_id, request.name
    action = "resolve" if request.status is PromiseStatus.RESOLVED else "reject"
    known_run(run, workflow_id)
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
    active_run(run, workflow_id, f"{action} (promise {name!r})")
    if row is None and request.require_existing:
        raise UnknownPromise(f"run {workflow_id!r} has no promise named {name!r}")
    if request.status is not PromiseStatus.RESOLVED:
        return None
    # Encoded once, straight from the value; its JSON data (a copy for containers) only
    # when a schema needs it: a big value must not be copied twice.
    what = f"value for promise {name!r}"
    value_json = serde.encode_value(request.value, what=what)
    if row is not None and not request.validated and row.schema:
        serde.validate_against_schema(serde.jsonable(request.value), row.schema, what=what)
    return value_json


def settled_row(
    request: SettlePromise,
    run: RunRow,
    row: PromiseRow | None,
    promise_id: str,
    value_json: str | None,
) -> PromiseRow:
    """The promise's row as a settle leaves it."""
    return PromiseRow(
        id=promise_id,
        execution_id=run.id,
        name=request.name,
        status=request.status,
        timeout_at=None if row is None else row.timeout_at,
        schema=None if row is None else row.schema,
        # Only a caller that hands the row on (the engine) needs the value as data.
        value=serde.jsonable(request.value)
        if value_json is not None and request.keep_value
        else None,
        error=request.reason,
        resolved_by=request.resolved_by,
        delivered=False,
    )


def check_signal(request: SendSignal, run: RunRow | None) -> tuple[RunRow, str]:
    """Returns the run and the value's JSON text.

    Raises:
        UnknownWorkflow, InvalidInput (ended run, empty name, value not JSON-able).
    """
    run = active_run(run, request.workflow_id, f"signal ({request.name!r})")
    if not request.name:
        raise InvalidInput("a signal needs a non-empty name")
    return run, serde.encode_value(request.value, what=f"value of signal {request.name!r}")
