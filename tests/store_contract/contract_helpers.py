"""Small builders for the store contract tests."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from flovyn_nb.model import PromiseStatus, RunStatus
from flovyn_nb.store import (
    Change,
    EventRow,
    NewPromise,
    NewRun,
    RunRow,
    RunUpdate,
    SettlePromise,
    Store,
)

StoreFactory = Callable[[], Store]  # a new handle on the test's store (like another process)


def new_run(
    workflow_id: str, *, kind: str = "k", owner: str | None = None, now: float | None = None
) -> NewRun:
    return NewRun(
        execution_id=str(uuid.uuid4()),
        workflow_id=workflow_id,
        kind=kind,
        input_json=json.dumps({"n": 1}),
        source_hash="hash",
        owner=owner,
        parent_id=None,
        now=time.time() if now is None else now,
    )


def start(store: Store, workflow_id: str, **options: Any) -> NewRun:
    """A run committed on its own, with its start event."""
    run = new_run(workflow_id, **options)
    store.commit([Change(new_run=run, events=[event(run.execution_id, 1)])])
    return run


def event(execution_id: str, seq: int, type: str = "WORKFLOW_STARTED") -> EventRow:
    return EventRow(execution_id, seq, type, json.dumps({"seq": seq}), time.time())


def end(store: Store, run: NewRun, status: RunStatus = RunStatus.COMPLETED) -> None:
    store.commit([Change(run_update=RunUpdate(run.execution_id, status, time.time(), "1"))])


def promise(
    store: Store,
    run: NewRun,
    name: str,
    *,
    timeout_at: float | None = None,
    schema: dict[str, Any] | None = None,
) -> Any:
    """Create a pending promise (as the owner does when its workflow reaches it)."""
    new = NewPromise(
        promise_id=f"{run.execution_id}:{name}",
        execution_id=run.execution_id,
        name=name,
        timeout_at=timeout_at,
        schema_json=None if schema is None else json.dumps(schema),
        created_at=time.time(),
    )
    return store.commit([Change(new_promise=new)])[0]


def settle(
    workflow_id: str,
    name: str,
    value: Any = None,
    *,
    reject: bool = False,
    now: float | None = None,
    require_existing: bool = False,
    resolved_by: str = "test",
) -> SettlePromise:
    return SettlePromise(
        workflow_id=workflow_id,
        name=name,
        status=PromiseStatus.REJECTED if reject else PromiseStatus.RESOLVED,
        value=value,
        reason="no" if reject else None,
        resolved_by=resolved_by,
        now=time.time if now is None else (lambda: now),
        require_existing=require_existing,
    )


def row(store: Store, workflow_id: str) -> RunRow:
    found = store.find_run(workflow_id)
    assert found is not None, workflow_id
    return found
