"""Starting runs without executing them here: a run put on a queue for whichever engine
serves it (a worker, another kernel), from any process, with or without an engine.

The run is created unowned, with its ``WORKFLOW_STARTED`` event, in one commit; the
store's work bell then tells the engines, and one that has the workflow registered and
serves the queue claims and runs it. The input is checked first against the workflow's
Python type when it is importable here, else against the input schema its engines
recorded in the store's catalog.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flovyn_nb import serde
from flovyn_nb.definitions import WorkflowDefinition, registry
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.queues import check_queue_name
from flovyn_nb.errors import (
    DuplicateWorkflowId,
    EngineError,
    InvalidInput,
    StoreError,
    UnknownWorkflowKind,
)
from flovyn_nb.model import EventType, WorkflowStarted
from flovyn_nb.store import Change, EventRow, NewRun, Store

__all__ = ["Enqueued", "checked_input", "enqueue", "queue_store"]


@dataclass(frozen=True)
class Enqueued:
    execution_id: str
    workflow_id: str
    kind: str
    queue: str
    existing: bool  # the workflow id was taken by a run of the same kind: that one


def checked_input(
    workflow: WorkflowDefinition[Any] | str, input: Any, store: Store
) -> tuple[str, Any, str | None]:
    """(kind, input as JSON data, source hash) of a start, the input checked."""
    definition = workflow
    if isinstance(workflow, str):
        definition = registry.find_workflow(workflow) or workflow
    if isinstance(definition, WorkflowDefinition):
        what = f"input of workflow {definition.name!r}"
        data = storable(input, what=what)
        if definition.takes_input:
            serde.from_json(data, definition.input_type, what=what)
        elif input is not None:
            raise InvalidInput(f"workflow {definition.name!r} takes no input, but one was given")
        return definition.name, data, definition.source_hash
    kind = definition
    if not isinstance(kind, str) or not kind:
        raise InvalidInput("name the workflow to start by its name or its definition")
    rows = store.list_definitions(type="workflow", kind=kind)
    if not rows:
        known = ", ".join(r.kind for r in store.list_definitions(type="workflow")) or "none"
        raise UnknownWorkflowKind(
            f"no workflow named {kind!r} is defined in this process or recorded in the store "
            f"{store.location} (recorded: {known}); start an engine or a worker that "
            "defines it first, or check the name",
            kind=kind,
        )
    what = f"input of workflow {kind!r}"
    data = storable(input, what=what)
    serde.validate_against_schema(data, rows[0].input_schema, what=what)
    return kind, data, rows[0].source_hash


def queue_store(store_for: Callable[[Any], Store], store: Any, *, engine_here: bool) -> Store:
    """The store to queue a run in. Without an engine here and without a store there,
    the error says both ways out (start an engine, or name an existing store).

    Raises:
        EngineError: no engine here and no store at that path.
    """
    try:
        return store_for(store)
    except StoreError as exc:
        if engine_here:
            raise
        raise EngineError(
            "the flovyn engine is not running in this process and there is no store to "
            f"queue the run in ({exc}): call flovyn_nb.start(store=...) or %load_ext "
            "flovyn_nb to run workflows here, or pass store= naming an existing store"
        ) from None


def enqueue(
    store: Store,
    workflow: WorkflowDefinition[Any] | str,
    input: Any,
    *,
    workflow_id: str | None,
    queue: str,
    now: float | None = None,
) -> Enqueued:
    """Create an unowned run of ``workflow`` waiting in ``queue`` (idempotent by
    ``workflow_id``).

    Raises:
        InvalidInput: bad queue name or workflow id, or the input does not fit.
        UnknownWorkflowKind: the workflow is neither importable here nor recorded.
        StoreError: the store cannot be written.
    """
    check_queue_name(queue)
    if workflow_id is not None and (not isinstance(workflow_id, str) or not workflow_id):
        raise InvalidInput("workflow_id must be a non-empty string")
    kind, data, source_hash = checked_input(workflow, input, store)
    workflow_id = workflow_id or str(uuid.uuid4())
    execution_id = str(uuid.uuid4())
    now = time.time() if now is None else now
    started = WorkflowStarted(
        workflow_id=workflow_id, kind=kind, input=data, source_hash=source_hash
    )
    run = NewRun(
        execution_id, workflow_id, kind, serde.dumps(data), source_hash, None, None, now, queue
    )
    event = EventRow(
        execution_id, 1, EventType.WORKFLOW_STARTED.value, serde.dumps(started.dump()), now
    )
    try:
        store.commit([Change(new_run=run, events=[event])])
    except DuplicateWorkflowId:
        existing = store.find_run(workflow_id)
        if existing is None:
            raise
        if existing.kind != kind:
            raise InvalidInput(
                f"workflow id {workflow_id!r} is already used by a run of {existing.kind!r}"
            ) from None
        return Enqueued(existing.id, workflow_id, kind, existing.queue, existing=True)
    return Enqueued(execution_id, workflow_id, kind, queue, existing=False)
