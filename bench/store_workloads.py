"""flovyn_nb's store on its own (issue 12): what opening, closing and checkpointing cost.

Every process without an engine (a ``flovyn-nb resolve``, the Jupyter server, a query)
opens the store, does one thing and closes it; an engine closes it after 100 ms idle or
when another process knocks. Since issue 12 a close no longer checkpoints (a kill during
DuckDB's checkpoint could destroy the file): the WAL grows until a closing process finds
it over the threshold and runs a checkpoint protected by a copy of the file. The figures:

- *open + read + close*: a fresh ``Store``, one query, ``close()``; the WAL as the
  previous samples left it (so replay on open is included);
- *open + write + close*: the same with one commit of three event rows (a step's worth)
  instead of the query: what a CLI write pays, protected checkpoints amortized in;
- *checkpoint*: folding a WAL of ``CHECKPOINT_COMMITS`` such commits into the file, with
  the copy taken first (``Store.checkpoint()``), and DuckDB's plain ``CHECKPOINT``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from bench.system import System
from bench.workloads import Metric, Outcome, Sizes, metric, summary

HISTORY = 2000  # step commits in the store before measuring (a store in use)
CHECKPOINT_COMMITS = 300
_PAYLOAD = json.dumps({"taskExecutionId": "t" * 36, "taskKind": "bench.noop", "input": None})


def _insert_step(con: Any, seq: int) -> None:
    con.execute(
        "INSERT INTO events VALUES (?, ?, 'TASK_COMPLETED', ?, now()::TIMESTAMP), "
        "(?, ?, 'TASK_SCHEDULED', ?, now()::TIMESTAMP), "
        "(?, ?, 'TASK_STARTED', ?, now()::TIMESTAMP)",
        [v for step in range(3) for v in ("bench-run", 3 * seq + step, _PAYLOAD)],
    )


def _wal(path: Path) -> int:
    try:
        return os.stat(f"{path}.wal").st_size
    except OSError:
        return 0


def open_close(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    from flovyn_nb.store.duckdb import DuckDBStore as Store

    samples = 300 if sizes.steps >= 1000 else 10
    history = HISTORY if sizes.steps >= 1000 else 20
    path = workdir / "open-close.duckdb"
    store = Store(path)
    for seq in range(history):
        store.autocommit(lambda con, seq=seq: _insert_step(con, seq))
    store.close()
    seq = history

    reads: list[float] = []
    writes: list[float] = []
    wal_seen: list[int] = []
    checkpoints = 0
    for _ in range(samples):
        started = time.perf_counter()
        store = Store(path)
        store.read(lambda con: con.execute("SELECT count(*) FROM workflow_executions").fetchall())
        store.close()
        reads.append(time.perf_counter() - started)

        started = time.perf_counter()
        store = Store(path)
        store.autocommit(lambda con, seq=seq: _insert_step(con, seq))
        wal_seen.append(_wal(path))
        store.close()
        writes.append(time.perf_counter() - started)
        checkpoints += getattr(store.lease, "checkpoints", 0)
        seq += 1

    protected: list[float] = []
    plain: list[float] = []
    rounds = 5 if sizes.steps >= 1000 else 1
    for _ in range(rounds):
        for kind in ("protected", "plain"):
            store = Store(path)
            for _ in range(CHECKPOINT_COMMITS if sizes.steps >= 1000 else 5):
                store.autocommit(lambda con, seq=seq: _insert_step(con, seq))
                seq += 1
            started = time.perf_counter()
            if kind == "protected" and hasattr(store, "checkpoint"):
                store.checkpoint()
                protected.append(time.perf_counter() - started)
            elif kind == "plain":
                store.read(lambda con: con.execute("CHECKPOINT").fetchall())
                plain.append(time.perf_counter() - started)
            store.close()
    ms = [x * 1000 for x in reads], [x * 1000 for x in writes]
    metrics = [
        metric("store_open_read_close_ms", "store open + one query + close", "ms", ms[0]),
        metric("store_open_write_close_ms", "store open + one commit + close", "ms", ms[1]),
        metric(
            "plain_checkpoint_ms",
            f"DuckDB CHECKPOINT of {CHECKPOINT_COMMITS} step commits",
            "ms",
            [x * 1000 for x in plain],
        ),
    ]
    if protected:
        metrics.append(
            metric(
                "protected_checkpoint_ms",
                f"protected checkpoint (copy first) of {CHECKPOINT_COMMITS} step commits",
                "ms",
                [x * 1000 for x in protected],
            )
        )
    metrics.append(
        Metric("store_wal_max_kb", "largest WAL between checkpoints", "KB", max(wal_seen) / 1024)
    )
    return Outcome(
        metrics=metrics,
        details={
            "file_bytes": path.stat().st_size,
            "wal_bytes": summary([float(w) for w in wal_seen]),
            "checkpoints_during_writes": checkpoints,
            "read_ms": summary(ms[0]),
            "write_ms": summary(ms[1]),
        },
    )
