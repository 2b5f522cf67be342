"""A helper process for tests/test_postgres.py: an engine on a PostgreSQL store.

Usage: ``python pg_proc.py STORE_URL [WORKFLOW_ID]``: starts this process's engine on the
store; with a workflow id, starts a ``pg-two-steps`` run and reports ``waiting`` once its
first step is done and it waits on promise ``go``; then reports ``ready`` and serves until
stdin closes (or it is killed). Side effects go to the file ``$FLOVYN_PG_EFFECTS``.
"""

from __future__ import annotations

import json
import os
import sys
import time

import flovyn_nb as fn
from flovyn_nb import WorkflowContext


def emit(event: str, **data: object) -> None:
    print(json.dumps({"event": event, "pid": os.getpid(), **data}), flush=True)


@fn.task(name="pg-effect")
def effect(key: str) -> str:
    """A side effect: one line ``KEY PID`` per execution."""
    fd = os.open(os.environ["FLOVYN_PG_EFFECTS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{key} {os.getpid()}\n".encode())
    finally:
        os.close(fd)
    return key


@fn.workflow(name="pg-two-steps")
async def two_steps(ctx: WorkflowContext, key: str) -> dict[str, object]:
    first = await ctx.schedule(effect, f"{key}-a")
    value = await ctx.promise("go")
    second = await ctx.schedule(effect, f"{key}-b")
    return {"first": first, "value": value, "second": second}


def main() -> None:
    url = sys.argv[1]
    fn.start(store=url)
    if len(sys.argv) > 2:
        workflow_id = sys.argv[2]
        fn.start_workflow(two_steps, workflow_id, workflow_id=workflow_id)
        deadline = time.monotonic() + 60
        while not fn.pending_promises(workflow_id):
            if time.monotonic() > deadline:
                emit("error", message="the run never waited on its promise")
                sys.exit(2)
            time.sleep(0.02)
        emit("waiting", workflow_id=workflow_id)
    emit("ready")
    sys.stdin.read()  # serve until the test closes stdin
    fn.stop()


if __name__ == "__main__":
    main()
