"""A second process for tests/test_store.py: holds, writes to, or runs an engine on a store.

Usage: ``python proc.py MODE STORE [options]``. It reports on stdout, one JSON object per
line (``{"event": ..., ...}``), and never exits by itself: the test kills it.

Modes:
    hold      open the file with a raw ``duckdb.connect`` and never let go.
    writer    insert rows back to back with ``Store.transaction`` (one row per commit).
    engine    start an engine; optionally start a run and report when it reaches a status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from pydantic import BaseModel

import flovyn_nb as fn
from flovyn_nb import WorkflowContext


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, "pid": os.getpid(), **data}), flush=True)


def forever() -> None:
    while True:
        time.sleep(3600)


# -- definitions shared by every engine process (same names, same source) ----------------


class Decision(BaseModel):
    approved: bool
    note: str = ""


@fn.task(name="store-test-inc")
def inc(value: int) -> int:
    return value + 1


@fn.workflow(name="store-test-approval")
async def approval(ctx: WorkflowContext, order: str) -> dict:
    decision = await ctx.promise("approval", type_hint=Decision)
    # Recorded after the promise: tells which process executed the end of the run.
    executor = await ctx.run("executor-pid", os.getpid)
    return {
        "order": order,
        "approved": decision.approved,
        "note": decision.note,
        "executor_pid": executor,
    }


@fn.workflow(name="store-test-two-step")
async def two_step(ctx: WorkflowContext) -> dict:
    decision = await ctx.promise("approval", type_hint=Decision)
    finish = await ctx.promise("finish")
    return {"approved": decision.approved, "note": decision.note, "finish": finish}


@fn.workflow(name="store-test-busy")
async def busy(ctx: WorkflowContext, steps: int) -> int:
    total = 0
    for _ in range(steps):
        total = await ctx.schedule(inc, total)
    return total


# -- modes -------------------------------------------------------------------------------


def hold(store: str) -> None:
    import duckdb

    con = duckdb.connect(store)
    con.execute("SELECT 1").fetchall()
    emit("ready")
    forever()
    con.close()  # pragma: no cover


def writer(store: str) -> None:
    from flovyn_nb.store import Store

    target = Store(store)
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
    eng = fn.start(store=store, **options)
    emit("started", engine_id=eng.id)
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
    args = parser.parse_args()
    if args.mode == "hold":
        hold(args.store)
    elif args.mode == "writer":
        writer(args.store)
    else:
        engine(args.store, args)


if __name__ == "__main__":
    main()
