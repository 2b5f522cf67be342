"""A process for tests/test_recovery.py to kill: it starts an engine and one run, then blocks.

Usage::

    python worker.py STORE KIND WORKFLOW_ID INPUT_JSON [--define late|old-drift] [--engine-only]

It never exits by itself (after ``LIFETIME`` seconds it gives up, so a test that dies
before killing it leaves nothing behind for long). The test waits for a condition it can
observe (a line in the side-effect file, an event or a pending promise in the store) and
then sends ``SIGKILL``: no ``finally``, no ``atexit``, no chance to release the run.

``--define late`` registers the pipeline under KIND (the test registers it later on its
side); ``--define old-drift`` registers the *old* code of KIND, which the test replaces
with a changed version to provoke a determinism violation. ``--engine-only`` starts no
run: the engine just takes over the runs of dead owners, like any new process would.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recovery import workflows

import flovyn_nb as fn
from flovyn_nb import WorkflowContext

LIFETIME = 120.0


def define_old_drift(kind: str) -> None:
    """Version 1 of the drift workflows: two tasks, then a promise."""

    async def drift(ctx: WorkflowContext, names: list[str]) -> Any:
        for name in names:
            await ctx.schedule(workflows.step, name)
        await ctx.promise("go")
        return "done"

    fn.workflow(name=kind)(drift)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("store")
    parser.add_argument("kind")
    parser.add_argument("workflow_id")
    parser.add_argument("input")
    parser.add_argument("--define", choices=["late", "old-drift"])
    parser.add_argument("--engine-only", action="store_true", help="start no run, only recover")
    args = parser.parse_args()
    if args.define == "late":
        workflows.define_late_pipeline(args.kind)
    elif args.define == "old-drift":
        define_old_drift(args.kind)
    engine = fn.start(store=args.store)
    if args.engine_only:
        print(json.dumps({"engine": engine.id, "pid": os.getpid()}), flush=True)
    else:
        handle = fn.start_workflow(args.kind, json.loads(args.input), workflow_id=args.workflow_id)
        print(json.dumps({"started": handle.execution_id, "pid": os.getpid()}), flush=True)
    threading.Event().wait(LIFETIME)
    os._exit(3)


if __name__ == "__main__":
    main()
