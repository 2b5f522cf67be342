"""Which engine executes which run; finding engines that died.

Every engine registers in ``engines`` with its PID, host and a heartbeat. A run is
executed only by the engine whose id is in the run's ``owner`` column; claims are
compare-and-set updates inside a transaction, and the store file admits one process at a
time, so two engines can never both claim a run. An owner is dead when, on this host, its
PID is gone (or now belongs to a process that started later), or, on another host, its
heartbeat is older than ``stale_after``. An engine of this process other than the one
claiming is dead too: a process runs one engine at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flovyn_nb.store import ops, pid_alive
from flovyn_nb.store.ops import Con, EngineRow, RunRow

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


@dataclass(frozen=True)
class Claim:
    runs: list[tuple[RunRow, list[tuple[int, str, Any, float]]]]
    engines: list[EngineRow]  # the engines alive at the time of the claim


def claim(
    con: Con,
    *,
    engine_id: str,
    kinds: Sequence[str],
    now: float,
    stale_after: float,
    limit: int | None = None,
) -> Claim:
    """Claim the active runs of these kinds whose owner is gone; load their histories."""
    engines = ops.live_engine_rows(con)
    living = [
        e
        for e in engines
        if e.id == engine_id
        or (not _earlier_in_this_process(e) and engine_alive(e, now, stale_after))
    ]
    alive = [e.id for e in living]
    for dead in (e for e in engines if e.id not in alive):
        ops.stop_engine(con, dead.id)
    candidates = ops.claimable_runs(con, kinds, alive)[:limit]
    taken = ops.claim_runs(con, [row.id for row in candidates], engine_id, alive)
    rows = [row for row in candidates if row.id in taken]
    histories = ops.load_histories(con, [row.id for row in rows])
    return Claim([(row, histories[row.id]) for row in rows], living)
