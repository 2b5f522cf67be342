"""Plain objects the client hands out: :class:`Runtime` (what :func:`flovyn_nb.start`
returns) and :class:`RunSnapshot` (a run read in one go, for panels and the CLI)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

from flovyn_nb.errors import StoreLocked
from flovyn_nb.model import LogEntry, RunInfo

if TYPE_CHECKING:
    from flovyn_nb.engine.engine import Engine
    from flovyn_nb.history.folded import FoldedRun


class Runtime:
    """This process's engine as users see it: where it runs, whether it runs, how to stop it.

    A context manager: ``with fn.start(store=...):`` stops the engine at the end of the
    block. Everything else (starting runs, answering promises, queries) goes through the
    functions of :mod:`flovyn_nb`.
    """

    __slots__ = ("_engine", "_stop")

    def __init__(self, engine: Engine, stop: Callable[[Engine], None]) -> None:
        self._engine = engine
        self._stop = stop  # the client's: it also forgets the engine when it is the current one

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"Runtime(store={self.store_location!r}, {state})"

    @property
    def id(self) -> str:
        """The engine's id (as in the store's ``engines`` table)."""
        return self._engine.id

    @property
    def store_location(self) -> str:
        """The store the engine runs on (a canonical file path)."""
        return self._engine.store.location

    @property
    def running(self) -> bool:
        """Whether the engine still runs (False once stopped, or when its loop died)."""
        return self._engine.running and self._engine.failure is None

    @property
    def store_blocked(self) -> StoreLocked | None:
        """Why the runs' record is not being written now (another process keeps the store
        locked), or None; the runs wait for it before any side effect."""
        return self._engine.store_blocked

    @property
    def errors(self) -> list[str]:
        """Internal errors the engine met and kept (it never prints them); a copy."""
        return list(self._engine.errors)

    def flush(self) -> None:
        """Make everything recorded so far durable (queries do this first by themselves).

        Raises:
            EngineStopped: the engine's loop died.
        """
        self._engine.flush()

    def stop(self) -> None:
        """Stop the engine; active runs stay in the store and resume with the next one.

        Raises:
            EngineError: called from inside a workflow or task.
        """
        self._stop(self._engine)

    def stop_gracefully(self, grace: float) -> int:
        """Claim no more runs, let the task attempts in flight finish (up to ``grace``
        seconds), then stop; the runs go back to the store for other engines. Returns
        how many attempts were still running when it stopped (their steps run again
        elsewhere)."""
        left = self._engine.drain(grace)
        self.stop()
        return left

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@dataclass(frozen=True)
class RunSnapshot:
    """A run read in one go: its row with every event, and its log lines (``since``)."""

    info: RunInfo
    logs: list[LogEntry]

    def fold(self) -> FoldedRun:
        """The run's history folded (status, steps with attempts, waits, deadlines)."""
        from flovyn_nb.history.events import events_of
        from flovyn_nb.history.fold import fold

        return fold(events_of(self.info.events))
