"""The client is the door for everything above it: ``fn.start()`` hands back a small
:class:`~flovyn_nb.Runtime`, and ``client.watch`` is the one change feed (this process's
engine item by item, other processes through the store's doorbell)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.client import Change
from flovyn_nb.testing import wait_until


@fn.workflow(name="door-waits")
async def waits(ctx: fn.WorkflowContext) -> str:
    return str(await ctx.wait_for_signal("go"))


def test_start_returns_a_runtime_not_the_engine(store_path: Path) -> None:
    with fn.start(store_path) as runtime:
        assert type(runtime) is fn.Runtime
        assert fn.current_engine() is runtime
        assert runtime.running
        assert runtime.store_location == str(store_path.resolve())
        assert client.store_location() == runtime.store_location
        assert not hasattr(runtime, "store") and not hasattr(runtime, "runs")
    assert not runtime.running
    assert fn.current_engine() is None


def test_the_feed_reports_runs_of_this_process_until_closed(engine: fn.Runtime) -> None:
    changes: list[Change] = []
    subscription = client.watch(changes.append)
    handle = fn.start_workflow(waits, workflow_id="door-1")
    wait_until(
        lambda: any(c.what == "event" and c.execution_id == handle.execution_id for c in changes)
    )
    assert client.is_live(handle.execution_id)
    subscription.close()
    seen = len(changes)
    fn.signal_workflow("door-1", "go", "now")
    assert handle.result(timeout=30) == "now"
    assert not client.is_live(handle.execution_id)
    assert len(changes) == seen, "a closed subscription was still called"


def test_the_feed_rings_when_another_process_commits(store_path: Path) -> None:
    with fn.start(store_path):
        fn.start_workflow(waits, workflow_id="door-2")  # durable from the start
    rung = threading.Event()

    def on_change(change: Change) -> None:
        if change.what == "bell":
            rung.set()

    code = "import sys, flovyn_nb as fn; fn.signal_workflow('door-2', 'go', 'x', store=sys.argv[1])"
    with client.watch(on_change, store=store_path):
        other = subprocess.run(
            [sys.executable, "-c", code, str(store_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert other.returncode == 0, other.stderr
        assert rung.wait(30), "no bell after another process wrote the store"
    snapshot = client.run_snapshot("door-2", store=store_path)
    assert snapshot.info.workflow_id == "door-2"
    assert not snapshot.fold().status.is_terminal  # its owner is gone: nobody ran it on
