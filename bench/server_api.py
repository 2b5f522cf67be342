"""The Jupyter server extension's API under load: ``python bench/server_api.py [--runs N]``.

Records N runs (default 10,000) in a fresh store, starts a real ``jupyter server`` with
the extension on it (another process, as in JupyterLab), then measures

- ``GET /flovyn-nb/api/runs`` latency (first page, a search, a sort, a deep page, a status
  filter), ``GET promises`` and ``GET metrics``: 20 requests each, median and p90;
- change → SSE message: this process (a "kernel" with an engine on the store) starts a
  run; the time from the ``start_workflow`` call until the open ``GET events`` stream says
  ``run-changed`` for it, 20 samples; then the same with no engine here (the run is only
  recorded, for a worker), which leaves out taking turns on the file with an engine.
  ``then_page_of_runs``: until a ``GET runs?limit=50`` sent on the message (as the sidebar
  does) lists the run: change → screen but for the browser's own share.

``--postgres`` does the same on a throwaway PostgreSQL server (``bench/pgserver.py``),
where the doorbell is ``LISTEN/NOTIFY``.

Prints one JSON object. Not part of ``bench/run.py`` (no DBOS counterpart).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import flovyn_nb as fn


@fn.workflow(name="bench-noop")
def noop(ctx: fn.WorkflowContext, x: int) -> int:
    return x


def record(store: Path | str, n: int) -> float:
    started = time.perf_counter()
    with fn.start(store=store):
        handles = [fn.start_workflow(noop, i, workflow_id=f"run-{i:05d}") for i in range(n)]
        for handle in handles:
            handle.result(timeout=600)
    return time.perf_counter() - started


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, store: Path | str, root: Path) -> None:
        self.port = free_port()
        self.token = secrets.token_hex(16)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.log = (root / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", f"--port={self.port}",
             f"--ServerApp.token={self.token}", f"--ServerApp.root_dir={root}",
             "--ServerApp.jpserver_extensions={'flovyn_nb': True}",
             f"--FlovynNb.store={store}"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.base = f"http://127.0.0.1:{self.port}/flovyn-nb/api/"
        deadline = time.monotonic() + 60
        while True:
            try:
                self.get("openapi.json")
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def request(self, path: str) -> urllib.request.Request:
        return urllib.request.Request(
            self.base + path, headers={"Authorization": f"token {self.token}"}
        )

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.request(path), timeout=120) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


def timed(server: Server, path: str, repeat: int = 20) -> dict[str, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        server.get(path)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 1),
    }


def sse_latency(
    server: Server, store: Path | str, samples: int, *, engine: bool = True
) -> dict[str, float]:
    arrivals: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()

    def listen() -> None:
        with urllib.request.urlopen(server.request("events"), timeout=600) as stream:
            for raw in stream:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    arrivals.put((time.perf_counter(), json.loads(line[6:])))

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(1.0)  # the stream is open and the feed has read its baseline
    latencies: list[float] = []
    pages: list[float] = []
    prefix = "sse" if engine else "sse-queued"
    with fn.start(store=store) if engine else contextlib.nullcontext():
        for i in range(samples):
            wid = f"{prefix}-{i}"
            started = time.perf_counter()
            handle = fn.start_workflow(noop, i, workflow_id=wid, store=None if engine else store)
            if engine:
                handle.result(timeout=60)
            while True:
                at, message = arrivals.get(timeout=60)
                if message.get("workflowId") == wid:
                    latencies.append((at - started) * 1000)
                    break
            # As the sidebar does on the message: re-read the first page of runs.
            while wid not in {r["workflowId"] for r in server.get("runs?limit=50")["runs"]}:
                pass
            pages.append((time.perf_counter() - started) * 1000)
            time.sleep(0.3)  # let the feed settle: samples apart
    return {**summary(latencies), "then_page_of_runs": summary(pages)}


def summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--sse-samples", type=int, default=20)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL store")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="flovyn-server-bench-"))
        root = Path(folder)
        store: Path | str = root / "flovyn.duckdb"
        if args.postgres:
            from bench.pgserver import PgServer

            store = stack.enter_context(PgServer()).create_database()
        result: dict[str, Any] = {
            "runs": args.runs,
            "store": "postgres" if args.postgres else "duckdb",
            "record_s": round(record(store, args.runs), 1),
        }
        server = Server(store, root)
        try:
            result["get"] = {
                path: timed(server, path)
                for path in (
                    "runs?limit=50",
                    "runs?limit=50&q=run-0999",
                    "runs?limit=50&sort=workflowId",
                    "runs?limit=50&offset=9000",
                    "runs?limit=50&status=FAILED",
                    f"runs/run-{args.runs // 2:05d}",
                    "promises",
                    "metrics?days=14",
                )
            }
            # A kernel with an engine on the store starts and runs a workflow: the server's
            # reads take turns on the DuckDB file with that engine.
            result["change_to_sse"] = sse_latency(server, store, args.sse_samples)
            # A process without an engine records a run for a worker (nobody holds the
            # file): the server's own cost, doorbell to message.
            result["change_to_sse_no_engine"] = sse_latency(
                server, store, args.sse_samples, engine=False
            )
        finally:
            server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
