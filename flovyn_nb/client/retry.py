"""Running a run again: retry a failed one, fork one from a step, and id reuse on start.

Both work with or without an engine in this process. Without one (the CLI) they are
plain store writes; the kernel or worker that has the workflow registered claims the run
(at once when it is this process, else at its next heartbeat, within seconds).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from flovyn_nb.definitions import WorkflowDefinition, registry
from flovyn_nb.engine.attempts import check_retry, fork_changes, retry_changes
from flovyn_nb.engine.engine import Engine
from flovyn_nb.engine.forkcheck import check_prefix
from flovyn_nb.errors import DuplicateWorkflowId, EngineError, InvalidInput
from flovyn_nb.handles import WorkflowHandle
from flovyn_nb.model import RunStatus
from flovyn_nb.store import Store

__all__ = ["Access", "IdReuse", "bind", "fork_run", "on_existing_run", "retry_run"]


@dataclass(frozen=True)
class Access:
    """What this module needs of ``flovyn_nb.client`` (bound by it: no import cycle)."""

    engine_on: Callable[[str | os.PathLike[str] | None], Engine | None]
    store_for: Callable[[str | os.PathLike[str] | None], Store]
    inbox_write: Callable[[Store, Callable[[Store], Any]], None]


_access: Access | None = None


def bind(access: Access) -> None:
    global _access
    _access = access


def _door() -> Access:
    if _access is None:  # flovyn_nb.client binds it when imported
        raise EngineError("flovyn_nb.client is not imported")
    return _access


IdReuse = Literal["return", "retry_failed", "reject"]
_ID_REUSE = ("return", "retry_failed", "reject")
_UNSET: Any = object()

# Called when start_workflow hands back an existing run (the kernel shows a hint).
ExistingRunHook = Callable[[WorkflowHandle, WorkflowDefinition[Any]], None]
_existing_hooks: list[ExistingRunHook] = []


def retry_run(
    workflow_id: str, *, reason: str = "retried", store: str | os.PathLike[str] | None = None
) -> WorkflowHandle:
    """Run a failed or cancelled run again, as a new attempt of the same run.

    The steps recorded before the failed step are reused (their side effects do not run
    again); the failed step and what follows run with the code registered now. The
    history keeps the earlier attempt, marked by a ``WORKFLOW_RETRIED`` event. A failed
    child run is retried with its parent.

    Args:
        workflow_id: the run to retry.
        reason: recorded in the ``WORKFLOW_RETRIED`` event.
        store: the store (default: the engine's, else ``FLOVYN_NB_STORE`` / the default).

    Returns:
        A handle on the run (``handle.result()`` waits for the new attempt).

    Raises:
        UnknownWorkflow: no run with that id in the store.
        InvalidInput: the run is running, waiting or completed (the message says which).
        DeterminismViolation: the code registered here no longer issues the steps the
            retry would reuse (names the step); nothing was changed: fork it from an
            earlier step instead.
    """
    door = _door()
    engine = door.engine_on(store)
    if engine is not None:
        retried = engine.retry_run(workflow_id, reason=reason)
        return WorkflowHandle(retried.workflow_id, retried.execution_id, retried.kind)
    target = door.store_for(store)
    row = target.find_run(workflow_id)
    definition = None if row is None else registry.find_workflow(row.kind)
    retried, changes = retry_changes(
        target,
        workflow_id,
        reason=reason,
        now=time.time(),
        source_hash=None if definition is None else definition.source_hash,
    )
    if definition is not None:
        check_retry(definition, retried)
    door.inbox_write(target, lambda s: s.commit(changes))
    return WorkflowHandle(retried.workflow_id, retried.execution_id, retried.kind, target)


def fork_run(
    source_id: str,
    from_step: int | str,
    *,
    workflow_id: str | None = None,
    input: Any = _UNSET,
    store: str | os.PathLike[str] | None = None,
) -> WorkflowHandle:
    """Start a new run that reuses the recorded steps of ``source_id`` before
    ``from_step`` and runs that step and the rest with the code registered now.

    The origin is not changed; the fork's ``WORKFLOW_STARTED`` names it and the step.
    Where this process has the workflow registered, the fork is refused unless its code
    issues the reused steps again (checked by replaying them, executing nothing).

    Args:
        source_id: the run to fork (any status).
        from_step: the first step to run again: its 1-based number as ``get_run``, the
            panel and ``flovyn-nb show`` number steps, or a step's name (its first
            occurrence).
        workflow_id: the fork's id (default: ``<source_id>-fork-<n>``, the first free n).
        input: a new input (default: the origin's); the reused steps replay with it.
        store: the store (default: the engine's, else the default store).

    Returns:
        A handle on the new run.

    Raises:
        UnknownWorkflow: no run ``source_id`` in the store.
        InvalidInput: no such step, a step number out of range, the id is taken, the
            input does not fit.
        DeterminismViolation: the current code no longer issues the reused steps (names
            the step).
    """
    given = input is not _UNSET
    value = input if given else None
    door = _door()
    engine = door.engine_on(store)
    if engine is not None:
        forked = engine.fork_run(
            source_id, from_step, workflow_id=workflow_id, input=value, input_given=given
        )
        return WorkflowHandle(forked.workflow_id, forked.execution_id, forked.kind)
    target = door.store_for(store)
    row = target.find_run(source_id)
    definition = None if row is None else registry.find_workflow(row.kind)
    forked, rows, change, _ = fork_changes(
        target,
        source_id,
        from_step,
        workflow_id=workflow_id,
        input=value,
        input_given=given,
        definition=definition,
        now=time.time(),
    )
    if definition is not None:
        started = rows[0][2]
        check_prefix(
            definition,
            forked.workflow_id,
            rows,
            started.get("input"),
            seed=str(started.get("seedFrom")),
        )
    door.inbox_write(target, lambda s: s.commit([change]))
    return WorkflowHandle(forked.workflow_id, forked.execution_id, forked.kind, target)


def on_existing_run(hook: ExistingRunHook | None) -> None:
    """Have ``hook(handle, definition)`` called whenever ``start_workflow`` hands back an
    existing run (``id_reuse="return"``); None removes the hooks (the kernel's hint)."""
    if hook is None:
        _existing_hooks.clear()
    else:
        _existing_hooks.append(hook)


def check_id_reuse(id_reuse: str) -> None:
    if id_reuse not in _ID_REUSE:
        raise InvalidInput(
            f"id_reuse must be one of {', '.join(map(repr, _ID_REUSE))}, got {id_reuse!r}"
        )


def reuse_existing(
    handle: WorkflowHandle, definition: WorkflowDefinition[Any] | None, id_reuse: str
) -> WorkflowHandle:
    """What ``start_workflow`` does when the id is taken, by ``id_reuse`` (see there)."""
    if id_reuse == "reject":
        raise DuplicateWorkflowId(
            f"workflow id {handle.workflow_id!r} is already used by a run; "
            "use another id, or id_reuse='return' to get that run back",
            workflow_id=handle.workflow_id,
        )
    if id_reuse == "retry_failed":
        row = _door().store_for(None).find_run(handle.workflow_id)  # flushed: its end is written
        if row is not None and row.status in (RunStatus.FAILED, RunStatus.CANCELLED):
            return retry_run(handle.workflow_id, reason="started again (id_reuse='retry_failed')")
        return handle
    if definition is not None:  # the hints compare with the code defined here
        for hook in _existing_hooks:
            with contextlib.suppress(Exception):  # a hint must never break a start
                hook(handle, definition)
    return handle
