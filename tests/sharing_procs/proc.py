"""A helper process for tests/test_sharing.py.

Usage: ``python proc.py MODE STORE [options]``. It reports on stdout, one JSON object per
line (``{"event": ..., "pid": ..., ...}``). It exits when its stdin closes (so a test that
dies leaves nothing behind) or after ``LIFETIME`` seconds; otherwise the test kills it.

Modes:
    seed      start an engine whose clock never fires a deadline, start ``--count`` runs
              of ``--workflow`` and report ``ready`` once all of them are WAITING.
    engine    (after ``--go`` appears) start an engine; optionally start ``--count`` runs of
              ``--workflow`` and report ``runs`` once all are ``--wait-status``. Answers
              ``report`` on stdin with its internal errors and live runs.
    resolve   (after ``--go`` appears) resolve promises ``p0..p{N-1}`` of the given runs
              with ``fn.resolve_promise(..., store=...)``, no engine in this process.
    resolve-at  resolve promise ``go`` of each run at the time the ``--plan`` file (JSON:
              ``[[epoch, workflow_id], ...]``) gives it; report which were refused.
    writer    insert rows back to back, one ``Store.transaction`` each.
    hold      open the store through a flovyn lease and keep it, ignoring knocks.
    waiter    (after ``--go`` appears) open the store ``--trials`` times, ``--pause``
              seconds apart, each time reading one count and closing again; report how
              long each open took.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.engine.clock import SystemClock

LIFETIME = 600.0  # a safety net for strays: beyond every deadline of the tests


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, "pid": os.getpid(), **data}), flush=True)


def exit_with_stdin(*, watch_stdin: bool) -> None:
    """Leave at once (no clean shutdown) when the test closes stdin or after LIFETIME."""

    def watch() -> None:
        sys.stdin.read()
        os._exit(0)

    def lifetime() -> None:
        time.sleep(LIFETIME)
        os._exit(3)

    if watch_stdin:  # (the engine mode reads its commands from stdin itself)
        threading.Thread(target=watch, daemon=True).start()
    threading.Thread(target=lifetime, daemon=True).start()


def wait_for(path: str | None) -> None:
    """A start line: every process waiting on the same file starts within a millisecond."""
    if path is None:
        return
    deadline = time.monotonic() + 60
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            emit("error", message=f"{path} never appeared")
            sys.exit(2)
        time.sleep(0.0005)


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            emit("error", message=f"timed out waiting until {what}")
            sys.exit(2)
        time.sleep(0.01)


class NeverFires(SystemClock):
    """Real time, but no deadline ever comes: this process's timers stay armed forever."""

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep_forever()


def start_runs(kind: str, prefix: str, count: int, input_template: str) -> list[str]:
    ids = []
    for index in range(count):
        workflow_id = f"{prefix}-{index}"
        payload = json.loads(input_template.replace("{id}", workflow_id))
        ids.append(fn.start_workflow(kind, payload, workflow_id=workflow_id).workflow_id)
    return ids


def all_in(kind: str, ids: list[str], status: str) -> bool:
    """Whether all these runs (other processes may have more of this kind) have the status."""
    runs = fn.list_runs(kind=kind, status=status)
    return set(ids) <= {run.workflow_id for run in runs}


# -- modes -------------------------------------------------------------------------------


def seed(args: argparse.Namespace) -> None:
    import sharing_defs  # noqa: F401  (registers the definitions)

    engine = fn.start(store=args.store, clock=NeverFires())
    ids = start_runs(args.workflow, args.prefix, args.count, args.input)
    wait_until(lambda: all_in(args.workflow, ids, "WAITING"), "all runs are WAITING")
    emit("ready", engine_id=engine.id)
    threading.Event().wait()


def engine(args: argparse.Namespace) -> None:
    import sharing_defs  # noqa: F401

    emit("armed")
    wait_for(args.go)
    started = time.time()
    eng = fn.start(store=args.store, heartbeat_interval=args.heartbeat)
    emit("started", engine_id=eng.id, at=started)
    if args.workflow:
        ids = start_runs(args.workflow, args.prefix, args.count, args.input)
        wait_until(
            lambda: all_in(args.workflow, ids, args.wait_status),
            f"all runs are {args.wait_status}",
        )
        emit("runs", ids=ids)
    for line in sys.stdin:  # until the test closes stdin
        if line.strip() == "report":
            internal = client.running_engine()  # its counters: what the tests observe
            assert internal is not None
            emit(
                "report",
                errors=list(eng.errors),
                live=len(getattr(client.activity(), "runs", ())),
                engine_id=eng.id,
                # Counters a test observes behaviour through (not timings): commits by
                # this engine, openings of the file, doorbell rings by others it saw.
                commits=internal.writer.commits,
                opens=internal.store.lease.opens,
                is_open=internal.store.lease.is_open,
                bell_gen=internal.bell_gen,
            )
    os._exit(0)


def resolve(args: argparse.Namespace) -> None:
    runs = args.runs.split(",")
    emit("armed")
    wait_for(args.go)
    started = time.monotonic()
    slowest = 0.0
    done = 0
    for index in range(args.promises):
        for workflow_id in runs:
            before = time.monotonic()
            fn.resolve_promise(
                workflow_id,
                f"p{index}",
                {"by": args.tag, "index": index},
                store=args.store,
                resolved_by=args.tag,
            )
            slowest = max(slowest, time.monotonic() - before)
            done += 1
    emit("done", count=done, elapsed=time.monotonic() - started, slowest=slowest)
    threading.Event().wait()


def resolve_at(args: argparse.Namespace) -> None:
    with open(args.plan) as f:
        plan = json.load(f)
    fn.list_runs(store=args.store)  # warm up (imports, first open) before the first deadline
    emit("armed")
    outcomes = {}
    for at, workflow_id in plan:
        time.sleep(max(0.0, at - time.time()))  # a schedule, not a synchronisation
        try:
            fn.resolve_promise(workflow_id, "go", workflow_id, store=args.store, resolved_by="late")
            outcomes[workflow_id] = "accepted"
        except fn.PromiseAlreadyResolved as exc:
            outcomes[workflow_id] = f"refused: {exc}"
    emit("done", outcomes=outcomes)
    threading.Event().wait()


def writer(args: argparse.Namespace) -> None:
    from flovyn_nb.store.duckdb import DuckDBStore

    store = DuckDBStore(args.store)
    count = 0

    def insert(con: Any) -> None:
        con.execute(
            "INSERT INTO logs VALUES ('writer', NULL, now()::TIMESTAMP, 'stdout', 'INFO', ?)",
            [str(count)],
        )

    while True:
        store.transaction(insert)
        count += 1
        if count == 1:
            emit("ready")


def hold(args: argparse.Namespace) -> None:
    """Take the store through flovyn's lease and keep it, knocks or not."""
    from flovyn_nb.store.duckdb import DuckDBStore

    store = DuckDBStore(args.store)
    with store.lease.connection() as con:
        con.execute("SELECT count(*) FROM logs").fetchall()
        emit("ready")
        threading.Event().wait()


def waiter(args: argparse.Namespace) -> None:
    from flovyn_nb.store.duckdb import DuckDBStore

    query = "SELECT count(*) FROM logs WHERE execution_id = 'writer'"
    emit("armed")
    wait_for(args.go)
    times, counts = [], []
    for _ in range(args.trials):
        time.sleep(args.pause)  # other work between visits: the writer gets the file back
        store = DuckDBStore(args.store, create=False, lock_timeout=args.lock_timeout)
        before = time.monotonic()
        counts.append(store.read(lambda con: con.execute(query).fetchone()[0]))
        times.append(time.monotonic() - before)
        store.close()
    emit("done", times=times, counts=counts)
    threading.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode", choices=["seed", "engine", "resolve", "resolve-at", "writer", "waiter", "hold"]
    )
    parser.add_argument("store")
    parser.add_argument("--go")
    parser.add_argument("--workflow")
    parser.add_argument("--prefix", default="run")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--input", default='"{id}"')
    parser.add_argument("--wait-status", default="WAITING")
    parser.add_argument("--heartbeat", type=float, default=5.0)
    parser.add_argument("--runs", default="")
    parser.add_argument("--promises", type=int, default=0)
    parser.add_argument("--tag", default="resolver")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--lock-timeout", type=float, default=10.0)
    parser.add_argument("--pause", type=float, default=0.05)
    parser.add_argument("--plan")
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # stacks into the log
    exit_with_stdin(watch_stdin=args.mode != "engine")
    modes = {"seed": seed, "engine": engine, "resolve": resolve, "writer": writer}
    modes.update({"waiter": waiter, "hold": hold, "resolve-at": resolve_at})
    modes[args.mode](args)


if __name__ == "__main__":
    main()
