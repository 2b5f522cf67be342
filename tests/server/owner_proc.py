"""A helper process for the live-feed test: ``owner STORE WORKFLOW_ID`` starts an engine
and an ``approval`` run, reports it waiting, and reports the run's result when another
process resolves its promise; ``resolve STORE WORKFLOW_ID`` resolves it without an engine.
JSON lines on stdout."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server_defs

import flovyn_nb as fn


def say(event: str, **data: object) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


def main() -> None:
    command, store, workflow_id = sys.argv[1:4]
    try:
        if command == "owner":
            with fn.start(store=store):
                handle = fn.start_workflow(server_defs.approval, 1, workflow_id=workflow_id)
                say("started")
                say("result", value=handle.result(timeout=120))
        else:
            fn.resolve_promise(workflow_id, "approve", True, store=store, allow_early=False)
            say("resolved")
    except Exception as error:
        say("error", error=repr(error))
        raise


if __name__ == "__main__":
    main()
