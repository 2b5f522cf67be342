"""Record the golden histories in tests/histories/ by really running the engine.

    .venv/bin/python tests/recovery/record_histories.py

Run it again only on purpose: when the event format changes, or when ``golden_order`` in
``workflows.py`` changes deliberately (then the old files are exactly the histories that
in-flight runs of real users hold, and tests/test_recovery.py says what happens to them).

- ``golden_order_valid.json``: ``golden_order`` as it is today, stopped where it waits for
  the ``approve`` promise (what a crash at that point leaves in the store).
- ``golden_order_nondeterministic.json``: the same stop point of an older version of the
  workflow that had no ``ctx.sleep``; replayed by today's code it must fail with
  ``DeterminismViolation``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recovery import workflows

import flovyn_nb as fn
from flovyn_nb import WorkflowContext
from flovyn_nb.testing import temporary_engine, wait_until

HISTORIES = Path(__file__).resolve().parents[1] / "histories"
WORKFLOW_ID = "golden-A1"
ORDER = "A1"


async def golden_order_without_sleep(ctx: WorkflowContext, order: str) -> dict[str, Any]:
    """``golden_order`` before the ``ctx.sleep(0.05)`` was added after the reservation."""
    reserved = await ctx.schedule(workflows.step, f"reserve-{order}")
    await ctx.set("reserved", reserved)
    first = ctx.schedule_async(workflows.step, f"pack-{order}-1")
    second = ctx.schedule_async(workflows.step, f"pack-{order}-2")
    packed = [await first, await second]
    decision = await ctx.promise("approve", type_hint=dict[str, Any])
    shipped = await ctx.schedule(workflows.step, f"ship-{order}")
    return {"reserved": reserved, "packed": packed, "decision": decision, "shipped": shipped}


def record(folder: Path, description: str) -> dict[str, Any]:
    """Run ``golden-order`` (whatever is registered under that name) up to its promise."""
    with temporary_engine(store=folder / "flovyn.duckdb"):
        handle = fn.start_workflow("golden-order", ORDER, workflow_id=WORKFLOW_ID)
        wait_until(lambda: fn.pending_promises(WORKFLOW_ID), timeout=30)
        run = fn.get_run(WORKFLOW_ID)
    return {
        "description": description,
        "recordedBy": f"flovyn_nb {fn.__version__}, tests/recovery/record_histories.py",
        "workflowId": run.workflow_id,
        "executionId": handle.execution_id,
        "kind": run.kind,
        "input": run.input,
        "events": [
            {"seq": e.seq, "type": e.type.value, "payload": e.payload, "ts": e.ts.isoformat()}
            for e in run.events
        ],
    }


def write(name: str, history: dict[str, Any]) -> None:
    path = HISTORIES / name
    path.write_text(json.dumps(history, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path} ({len(history['events'])} events)")


def main() -> None:
    HISTORIES.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flovyn-golden-") as tmp:
        folder = Path(tmp)
        os.environ[workflows.SIDE_EFFECTS_ENV] = str(folder / "side-effects.txt")
        os.environ.pop(workflows.HANG_ENV, None)
        (folder / "valid").mkdir()
        valid = record(
            folder / "valid",
            "golden-order as the current code runs it, suspended on promise 'approve'",
        )
        fn.workflow(name="golden-order")(golden_order_without_sleep)
        (folder / "old").mkdir()
        old = record(
            folder / "old",
            "an older golden-order without ctx.sleep, suspended on promise 'approve'; "
            "nondeterministic against the current code",
        )
    write("golden_order_valid.json", valid)
    write("golden_order_nondeterministic.json", old)


if __name__ == "__main__":
    main()
