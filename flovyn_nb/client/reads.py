"""The client's reads, as the door functions in this package's other modules reach them.

``client/__init__`` binds its functions here when it is imported, so modules such as
``client.debug`` and ``client.replay_check`` read runs the way the client does (through
the engine's store when one runs) without importing the package that imports them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from flovyn_nb.model import LogEntry, RunInfo

Where = str | os.PathLike[str] | None


@dataclass(frozen=True)
class Reads:
    get_run: Callable[..., RunInfo]  # (workflow_id, *, events=True, store=None)
    list_runs: Callable[..., list[RunInfo]]  # (*, status=, kind=, limit=, store=None)
    logs: Callable[[str, Where], list[LogEntry]]  # (execution_id, store)


_bound: list[Reads] = []


def bind(reads: Reads) -> None:
    _bound[:] = [reads]


def reads() -> Reads:
    # Importing any module of this package runs client/__init__ first, which binds them.
    return _bound[0]
