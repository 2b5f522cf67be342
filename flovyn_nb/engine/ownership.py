"""Which engine executes which run; finding engines that died.

Every engine registers in ``engines`` with its PID, host and a heartbeat. A run is
executed only by the engine whose id is in the run's ``owner`` column; claims are
compare-and-set updates inside a transaction (see ``Store.claim``), so two engines can
never both claim a run. This module holds the policy: an owner is dead when, on this
host, its PID is gone (or now belongs to a process that started later), or, on another
host, its heartbeat is older than ``stale_after``. An engine of this process other than the one
claiming is dead too: a process runs one engine at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from pathlib import Path

from flovyn_nb.store import Claim, EngineRow

HOST = socket.gethostname()


def process_start(pid: int) -> str | None:
    """The start time of a process in clock ticks since boot (Linux), to tell PID reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22, counted after the command name (which may hold spaces) closes with ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


MY_START = process_start(os.getpid())


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def engine_alive(row: EngineRow, now: float, stale_after: float) -> bool:
    if row.host == HOST:
        if not pid_alive(row.pid):
            return False
        started = process_start(row.pid)
        return row.proc_start is None or started is None or started == row.proc_start
    return now - row.heartbeat_at <= stale_after


def _earlier_in_this_process(row: EngineRow) -> bool:
    """An engine of this very process (one runs at a time) that stopped without saying so,
    e.g. while another process kept the store locked."""
    return row.host == HOST and row.pid == os.getpid() and row.proc_start == MY_START


def claim(
    *,
    engine_id: str,
    kinds: Sequence[str],
    now: float,
    stale_after: float,
    limit: int | None = None,
    queues: Sequence[str] = ("default",),
) -> Claim:
    """The claim of the active runs of these kinds, waiting in these queues, whose owner
    is none or gone (the store commits it and loads their histories)."""

    def alive(row: EngineRow) -> bool:
        return not _earlier_in_this_process(row) and engine_alive(row, now, stale_after)

    return Claim(engine_id, list(kinds), alive, limit, list(queues), now)
