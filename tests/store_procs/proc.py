"""A second process for tests/test_store.py: holds, writes to, or runs an engine on a store.

Usage: ``python proc.py MODE STORE [options]``. It reports on stdout, one JSON object per
line (``{"event": ..., ...}``), and never exits by itself: the test kills it.

Modes:
    hold      open the file with a raw ``duckdb.connect`` (retrying for ``--wait`` s,
              without knocking) and never let go.
    writer    insert rows back to back with ``Store.transaction`` (one row per commit).
    engine    start an engine (the definitions in store_proc_defs.py registered before it
              starts, or after with --late-definitions); optionally start a run and report
              when it reaches a status.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from typing import Any

import flovyn_nb as fn


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, "pid": os.getpid(), **data}), flush=True)


def forever() -> None:
    while True:
        time.sleep(3600)


# -- modes -------------------------------------------------------------------------------


def hold(store: str, wait: float) -> None:
    """Connect (retrying for up to ``wait`` seconds, without knocking) and never let go."""
    import duckdb

    started = time.monotonic()
    while True:
        try:
            con = duckdb.connect(store)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() - started > wait:
                emit("error", message=str(exc))
                sys.exit(2)
            time.sleep(0.005)
    con.execute("SELECT 1").fetchall()
    emit("ready", waited=time.monotonic() - started)
    forever()
    con.close()  # pragma: no cover


def writer(store: str) -> None:
    from flovyn_nb.store.duckdb import DuckDBStore

    target = DuckDBStore(store)
    count = 0

    def insert(con: Any) -> None:
        con.execute(
            "INSERT INTO logs VALUES ('writer', NULL, now()::TIMESTAMP, 'stdout', 'INFO', ?)",
            [str(count)],
        )

    while True:
        target.transaction(insert)
        count += 1
        if count == 1:
            emit("ready")


def engine(store: str, args: argparse.Namespace) -> None:
    options: dict[str, Any] = {}
    if args.heartbeat is not None:
        options["heartbeat_interval"] = args.heartbeat
    if not args.late_definitions:
        importlib.import_module("store_proc_defs")
    eng = fn.start(store=store, **options)
    emit("started", engine_id=eng.id)
    if args.late_definitions:
        # As in a notebook: the engine runs first, the defining cell comes later.
        importlib.import_module("store_proc_defs")
        emit("registered")
    if args.workflow:
        payload = json.loads(args.input) if args.input is not None else None
        handle = fn.start_workflow(args.workflow, payload, workflow_id=args.workflow_id)
        emit("run", workflow_id=handle.workflow_id, execution_id=handle.execution_id)
        if args.wait_status:
            deadline = time.monotonic() + 20
            while fn.get_run(handle.workflow_id, events=False).status.value != args.wait_status:
                if time.monotonic() > deadline:
                    emit("error", message=f"run never reached {args.wait_status}")
                    sys.exit(2)
                time.sleep(0.01)
            emit("status", status=args.wait_status)
    forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["hold", "writer", "engine"])
    parser.add_argument("store")
    parser.add_argument("--workflow")
    parser.add_argument("--workflow-id")
    parser.add_argument("--input")
    parser.add_argument("--wait-status")
    parser.add_argument("--heartbeat", type=float)
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--late-definitions", action="store_true")
    args = parser.parse_args()
    if args.mode == "hold":
        hold(args.store, args.wait)
    elif args.mode == "writer":
        writer(args.store)
    else:
        engine(args.store, args)


if __name__ == "__main__":
    main()
