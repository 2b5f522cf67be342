"""A DBOS worker process for the queue-throughput workload: ``python -m bench.queue_dbos URL``.

It declares the workflow, launches DBOS on the PostgreSQL system database ``URL`` with
queue ``bench`` registered (every launched DBOS process serves the queues it registers),
prints ``{"ready": ...}`` and serves until its stdin closes.

At DBOS's defaults a queue has no ``worker_concurrency``: one process's poll may claim
every queued run. ``FLOVYN_BENCH_DBOS_WORKER_CONCURRENCY=N`` (a side measurement, not
part of ``make bench``) registers the queue with that per-process limit instead.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dbos import DBOS, DBOSConfig

APP = "flovyn-bench"
VERSION = "bench"  # the same in the producer and every worker
QUEUE = "bench"
_LIMIT = os.environ.get("FLOVYN_BENCH_DBOS_WORKER_CONCURRENCY")
WORKER_CONCURRENCY = int(_LIMIT) if _LIMIT else None


@DBOS.step()
def queue_noop() -> None:
    return None


@DBOS.workflow()
def three_steps(value: int) -> int:
    for _ in range(3):
        queue_noop()
    return value


def main(url: str) -> int:
    config: DBOSConfig = {
        "name": APP,
        "system_database_url": url,
        "application_version": VERSION,
        "run_admin_server": False,
        "log_level": "ERROR",
    }
    DBOS(config=config)
    DBOS.launch()
    DBOS.register_queue(QUEUE, worker_concurrency=WORKER_CONCURRENCY)
    print(json.dumps({"ready": time.time()}), flush=True)
    sys.stdin.read()  # until the bench closes stdin
    DBOS.destroy(workflow_completion_timeout_sec=5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
