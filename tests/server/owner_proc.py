"""A helper process for the server tests (the server's process must have no workflow
code, as in JupyterLab): ``seed STORE -`` records the runs the tests read; ``owner STORE
WORKFLOW_ID`` starts an engine and an ``approval`` run, reports it started, and reports
the run's result when another process resolves its promise; ``resolve STORE
WORKFLOW_ID`` resolves it without an engine; ``many STORE N`` records N completed doublers
and two failed breakers. JSON lines on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_defs

import flovyn_nb as fn


def say(event: str, **data: object) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


def seed(store: str) -> None:
    """Two completed doublers, a failed breaker, an approval waiting on ``approve``."""
    with fn.start(store=store):
        done = [fn.start_workflow(server_defs.doubler, i, workflow_id=f"dbl-{i}") for i in (1, 2)]
        bad = fn.start_workflow(server_defs.breaker, 3, workflow_id="brk-1")
        fn.start_workflow(server_defs.approval, 4, workflow_id="apr-1")
        for handle in done:
            handle.result(timeout=60)
        try:
            bad.result(timeout=60)
        except fn.FlovynError:
            pass
        else:
            raise AssertionError("brk-1 did not fail")
        fn.testing.wait_until(lambda: fn.pending_promises("apr-1"), timeout=60)


def seed_many(store: str, count: int) -> None:
    """``count`` completed doublers and two failed breakers."""
    with fn.start(store=store):
        done = [
            fn.start_workflow(server_defs.doubler, i, workflow_id=f"m-dbl-{i}")
            for i in range(count)
        ]
        bad = [fn.start_workflow(server_defs.breaker, i, workflow_id=f"m-brk-{i}") for i in (1, 2)]
        for handle in done:
            handle.result(timeout=120)
        for handle in bad:
            try:
                handle.result(timeout=60)
            except fn.FlovynError:
                pass


def main() -> None:
    command, store, workflow_id = sys.argv[1:4]
    try:
        if command == "seed":
            seed(store)
            say("seeded")
        elif command == "many":
            seed_many(store, int(workflow_id))
            say("seeded")
        elif command == "owner":
            with fn.start(store=store):
                handle = fn.start_workflow(server_defs.approval, 1, workflow_id=workflow_id)
                say("started")
                say("result", value=handle.result(timeout=120))
        elif command == "queue":  # an ``approval`` run recorded for a worker (no engine)
            fn.start_workflow(server_defs.approval, 5, workflow_id=workflow_id, store=store)
            say("queued")
        else:
            fn.resolve_promise(workflow_id, "approve", True, store=store, allow_early=False)
            say("resolved")
    except Exception as error:
        say("error", error=repr(error))
        raise


if __name__ == "__main__":
    main()
