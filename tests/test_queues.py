"""Queues and starts without an engine: runs wait in a named queue until an engine that
serves it claims them, within the queue's limits."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.errors import InvalidInput, UnknownWorkflowKind
from flovyn_nb.testing import temporary_engine, wait_until


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    """Every test of this module runs on both backends (see tests/conftest.py)."""
    return store_target


@fn.workflow(name="qt-double")
async def double(ctx: fn.WorkflowContext, n: int) -> int:
    return n * 2


@fn.workflow(name="qt-gate")
async def gate(ctx: fn.WorkflowContext) -> str:
    return str(await ctx.promise("go"))


def _owner(workflow_id: str) -> str | None:
    run = fn.get_run(workflow_id, events=False)
    return run.owner


def test_a_run_on_a_served_queue_runs_and_says_its_queue(store_path: Path) -> None:
    with temporary_engine(store=store_path, queues=["default", "q"]):
        handle = fn.start_workflow(double, 4, workflow_id="on-q", queue="q")
        assert handle.result(timeout=60) == 8
        assert fn.get_run("on-q").queue == "q"
        assert client.queue_info("q").served


def test_a_run_on_a_queue_nobody_serves_waits_unowned(store_path: Path) -> None:
    with temporary_engine(store=store_path):
        fn.start_workflow(double, 1, workflow_id="waits", queue="elsewhere")
        run = fn.get_run("waits", events=False)
        assert (run.queue, run.owner, run.status.value) == ("elsewhere", None, "RUNNING")
        info = client.queue_info("elsewhere")
        assert not info.served and info.engines == []


def test_a_process_without_an_engine_starts_a_run_an_engine_executes(store_path: Path) -> None:
    with temporary_engine(store=store_path):
        script = (
            "import sys\n"
            "from flovyn_nb import client\n"
            "h = client.start_workflow('qt-double', 21, workflow_id='from-cli', store=sys.argv[1])\n"
            "print(h.result(timeout=60))\n"
            "try:\n"
            "    client.start_workflow('qt-double', 'x', store=sys.argv[1])\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__, exc)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(store_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "FLOVYN_NB_LOCK_TIMEOUT": "60"},
            check=True,
        ).stdout.splitlines()
        assert out[0] == "42"
        assert out[1].startswith("InvalidInput ") and "qt-double" in out[1]
        assert fn.get_run("from-cli").owner is None  # ended: nobody holds it


def test_a_workflow_neither_defined_nor_recorded_is_one_clear_error(store_path: Path) -> None:
    with temporary_engine(store=store_path):
        with pytest.raises(UnknownWorkflowKind, match="no workflow named 'nope'"):
            fn.start_workflow("nope", 1, queue="q")
        with pytest.raises(InvalidInput, match="queue name"):
            fn.start_workflow(double, 1, queue=" q")
        with pytest.raises(InvalidInput, match="concurrency"):
            fn.queue("q", concurrency=0)
        with pytest.raises(InvalidInput, match="limit must be"):
            fn.queue("q", limit=(3, 0))
        assert fn.list_runs() == []


def test_global_concurrency_lets_the_next_run_go_when_one_ends(store_path: Path) -> None:
    with temporary_engine(store=store_path, queues=["lim"]):
        info = fn.queue("lim", concurrency=1)
        assert info.concurrency == 1 and info.served
        for i in range(3):
            fn.start_workflow(gate, None, workflow_id=f"g{i}", queue="lim")
        wait_until(lambda: _owner("g0") is not None, timeout=60)
        assert [_owner(f"g{i}") for i in (1, 2)] == [None, None]
        fn.resolve_promise("g0", "go", "a")
        wait_until(lambda: _owner("g1") is not None, timeout=60)
        assert _owner("g2") is None
        fn.resolve_promise("g1", "go", "b")
        fn.resolve_promise("g2", "go", "c")  # early: it waits for the run
        assert fn.get_handle("g2").result(timeout=60) == "c"
