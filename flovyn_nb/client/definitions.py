"""Door functions over the store's catalog of definitions: the workflows any engine
registered, their source and input schema, and whether a live engine serves them.

They read the store only, so they work in processes without the code (the CLI, the
Jupyter server, a notebook that only enqueues runs).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flovyn_nb.engine import ownership
from flovyn_nb.errors import UnknownWorkflowKind
from flovyn_nb.store import Store
from flovyn_nb.store.catalog import DefinitionRow, Server

__all__ = ["WorkflowInfo", "list_workflows", "serving_queues", "workflow_source"]

# An engine on another host counts as alive while its heartbeat is this fresh (the
# engine's default ``stale_after``).
STALE_AFTER = 30.0


@dataclass(frozen=True)
class WorkflowInfo:
    """The latest recorded definition of a workflow.

    ``served``: a live engine registered it; ``queues``: the queues those engines serve
    (runs on other queues wait); ``engines``: their ids.
    """

    name: str
    version: int
    source_hash: str
    description: str | None
    input_schema: Any
    output_schema: Any
    registered_at: float
    served: bool
    queues: list[str] = field(default_factory=list)
    engines: list[str] = field(default_factory=list)


def alive(servers: list[Server]) -> list[Server]:
    """The servers whose engine still lives."""
    now = time.time()
    return [s for s in servers if ownership.engine_alive(s.engine, now, STALE_AFTER)]


def _info(row: DefinitionRow) -> WorkflowInfo:
    live = alive(row.servers)
    return WorkflowInfo(
        name=row.kind,
        version=row.version,
        source_hash=row.source_hash,
        description=row.description,
        input_schema=row.input_schema,
        output_schema=row.output_schema,
        registered_at=row.last_registered_at,
        served=bool(live),
        queues=sorted({q for s in live for q in s.queues}),
        engines=[s.engine.id for s in live],
    )


StoreLookup = Callable[[str | os.PathLike[str] | None], Store]
_lookup: list[StoreLookup] = []


_engine: list[Callable[[], Any]] = []


def bind_store_lookup(lookup: StoreLookup, engine: Callable[[], Any]) -> None:
    """The client package hands its store cache and its running engine over (importing
    it here would be a cycle)."""
    _lookup[:] = [lookup]
    _engine[:] = [engine]


def running_engine() -> Any:
    """This process's running engine, or None (for the client's own modules)."""
    return _engine[0]()


def store_of(store: str | os.PathLike[str] | None) -> Store:
    """The store to read (the client package's cache)."""
    return _lookup[0](store)


def list_workflows(*, store: str | os.PathLike[str] | None = None) -> list[WorkflowInfo]:
    """Every workflow recorded in the store (its latest definition), by name.

    Raises:
        StoreError: the store cannot be read (e.g. no store at that path).
    """
    rows = store_of(store).list_definitions(type="workflow")
    return [_info(row) for row in rows]


def workflow_definition(
    kind: str, *, store: str | os.PathLike[str] | None = None
) -> DefinitionRow | None:
    """The latest recorded definition of workflow ``kind``, or None."""
    rows = store_of(store).list_definitions(type="workflow", kind=kind)
    return rows[0] if rows else None


def serving_queues(kind: str, *, store: str | os.PathLike[str] | None = None) -> list[str]:
    """The queues on which a live engine serves workflow ``kind`` (empty: nothing does)."""
    row = workflow_definition(kind, store=store)
    if row is None:
        return []
    return sorted({q for s in alive(row.servers) for q in s.queues})


def workflow_source(
    kind: str, source_hash: str | None = None, *, store: str | os.PathLike[str] | None = None
) -> str:
    """The recorded source text of workflow ``kind`` (its latest version, or the version
    with ``source_hash``, e.g. the one a run started with: ``RunInfo.source_hash``).

    Raises:
        UnknownWorkflowKind: no such workflow (or version) is recorded, or its source
            could not be read when it was registered.
    """
    rows = store_of(store).list_definitions(type="workflow", kind=kind, all_versions=True)
    if source_hash is not None:
        rows = [r for r in rows if r.source_hash == source_hash]
    if not rows:
        which = f" with source hash {source_hash}" if source_hash else ""
        raise UnknownWorkflowKind(
            f"no workflow {kind!r}{which} is recorded in this store; an engine records a "
            "workflow when it registers it (run its cell, or start a worker that imports it)",
            kind=kind,
        )
    if rows[0].source is None:
        raise UnknownWorkflowKind(
            f"the source of workflow {kind!r} was not available when it was registered "
            "(defined interactively without a file)",
            kind=kind,
        )
    return rows[0].source
