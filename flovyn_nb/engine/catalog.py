"""Recording the definitions this engine registers in the store's catalog, so that any
process (the CLI, the Jupyter server, a worker) can list the workflows, show their source
and check an input against their schema without importing the code."""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

from flovyn_nb import serde
from flovyn_nb.definitions import TaskDefinition, WorkflowDefinition
from flovyn_nb.store.catalog import NewDefinition


def _source(fn: Any) -> str | None:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):  # defined in a REPL or built at run time
        return None


def _schema_json(type_hint: Any) -> str | None:
    try:
        schema = serde.schema_of(type_hint)
    except Exception:  # a type pydantic cannot describe: no form, not a failed registration
        return None
    return None if schema is None else json.dumps(schema)


def describe(definition: WorkflowDefinition[Any] | TaskDefinition[Any]) -> NewDefinition:
    """The catalog row of a registered workflow or task."""
    fn = definition.fn
    source = _source(fn)
    if isinstance(definition, WorkflowDefinition):
        source_hash = definition.source_hash
        kind: Any = "workflow"
    else:
        kind = "task"
        text = source if source is not None else repr(getattr(fn, "__qualname__", fn))
        source_hash = hashlib.sha256(text.encode()).hexdigest()[:16]
    return NewDefinition(
        type=kind,
        kind=definition.name,
        source_hash=source_hash,
        description=inspect.getdoc(fn),
        source=source,
        input_schema_json=_schema_json(definition.input_type) if definition.takes_input else None,
        output_schema_json=_schema_json(definition.return_type),
    )
