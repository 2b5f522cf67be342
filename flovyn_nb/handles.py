"""The handle of a started run (:class:`WorkflowHandle`), apart from the client so that the
client module stays small. The handle reaches the engine and the store only through the
:class:`Door` the client binds when it is imported: this module imports no client code,
so there is no import cycle."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flovyn_nb import serde
from flovyn_nb.definitions import registry
from flovyn_nb.errors import EngineError, InvalidInput, WorkflowCancelled, WorkflowFailed
from flovyn_nb.model import RunInfo, RunStatus

if TYPE_CHECKING:
    from flovyn_nb.store import Store

__all__ = ["Door", "HandleDisplay", "WorkflowHandle", "bind"]

# How a WorkflowHandle shows in a notebook: set by the widgets (set_handle_display), so that
# no display code is imported here.
HandleDisplay = Callable[["WorkflowHandle", Any, Any], dict[str, Any]]


@dataclass(frozen=True)
class Door:
    """What a handle needs from the client (bound by ``flovyn_nb.client`` on import)."""

    wait_finished: Callable[[str, Store | None, float | None], tuple[RunStatus, Any, Any]]
    get_run: Callable[[str, bool], RunInfo]  # (workflow_id, with events)
    cancel: Callable[[str, str], None]  # (workflow_id, reason)
    signal: Callable[[str, str, Any], None]
    display: Callable[[], HandleDisplay | None]


_door: Door | None = None


def bind(door: Door) -> None:
    """Connect handles to the client (called once, when ``flovyn_nb.client`` is imported)."""
    global _door
    _door = door


def _the_door() -> Door:
    if _door is None:  # only if handles is used without importing flovyn_nb at all
        raise EngineError("flovyn_nb.client is not loaded: `import flovyn_nb` first")
    return _door


class WorkflowHandle:
    """A started run. ``h.result()`` blocks; ``await h`` waits without blocking a loop."""

    def __init__(
        self, workflow_id: str, execution_id: str, kind: str, store: Store | None = None
    ) -> None:
        self.workflow_id = workflow_id
        self.execution_id = execution_id
        self.kind = kind
        self._store = store

    def __repr__(self) -> str:
        return f"WorkflowHandle(workflow_id={self.workflow_id!r}, kind={self.kind!r})"

    def result(self, timeout: float | timedelta | None = None) -> Any:
        """The run's output, typed as the workflow's return annotation.

        Args:
            timeout: how long to wait, in seconds or as a ``timedelta`` (None: no limit).

        Raises:
            WorkflowFailed: the run failed (``.cause`` has type, message and traceback).
            WorkflowCancelled: the run was cancelled.
            TimeoutError: it did not end within ``timeout``.
            InvalidInput: ``timeout`` is neither seconds nor a ``timedelta``.
        """
        seconds = _seconds(timeout)
        status, output, error = _the_door().wait_finished(self.execution_id, self._store, seconds)
        if status is RunStatus.COMPLETED:
            definition = registry.find_workflow(self.kind)
            return serde.from_json(
                output, definition.return_type if definition else Any, what="workflow result"
            )
        if status is RunStatus.CANCELLED:
            reason = self.info().cancel_reason
            raise WorkflowCancelled(
                f"run {self.workflow_id!r} was cancelled" + (f": {reason}" if reason else ""),
                workflow_id=self.workflow_id,
                reason=reason,
            )
        error = error or {}
        raise WorkflowFailed(
            f"run {self.workflow_id!r} failed: {error.get('type')}: {error.get('message')}",
            workflow_id=self.workflow_id,
            cause=error,
        )

    def __await__(self) -> Generator[Any, None, Any]:
        from flovyn_nb.engine.threads import awaitable_in_thread

        return awaitable_in_thread(functools.partial(self.result, None))

    def _repr_mimebundle_(
        self, include: Any = None, exclude: Any = None
    ) -> dict[str, Any] | tuple[dict[str, Any], dict[str, Any]]:
        """In a notebook a handle shows its live run panel (static text/HTML in batch mode):
        the display the widgets registered with ``set_handle_display``."""
        display = _the_door().display()
        if display is None:
            return {"text/plain": repr(self)}
        return display(self, include, exclude)

    @property
    def store_location(self) -> str | None:
        """The store this handle reads when it was given one (None: the engine's/default)."""
        return None if self._store is None else self._store.location

    def status(self) -> RunStatus:
        return _the_door().get_run(self.workflow_id, False).status

    def signal(self, name: str, value: Any = None) -> None:
        """Send the signal ``name`` with ``value`` to this run (as ``signal_workflow`` does)."""
        _the_door().signal(self.workflow_id, name, value)

    def cancel(self, reason: str = "") -> None:
        """Ask the run to stop; waits raise ``WorkflowCancelled`` (with ``reason``) and the
        run ends CANCELLED."""
        _the_door().cancel(self.workflow_id, reason)

    @property
    def workflow_execution_id(self) -> str:
        """Flovyn's name for the run's execution id."""
        return self.execution_id

    def info(self) -> RunInfo:
        return _the_door().get_run(self.workflow_id, True)


def _seconds(timeout: float | timedelta | None) -> float | None:
    if timeout is None or isinstance(timeout, timedelta):
        return None if timeout is None else timeout.total_seconds()
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidInput(
            f"result(timeout={timeout!r}): give seconds (a number) or a datetime.timedelta"
        )
    return float(timeout)
