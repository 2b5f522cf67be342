"""``%flovyn check`` and ``%flovyn debug`` in a real kernel (tests/kernel_harness)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernel_harness.harness import Cell, Kernel

StartKernel = Callable[..., Kernel]

CELLS = """
import flovyn_nb as fn
from flovyn_nb import WorkflowContext
from flovyn_nb.kernel.waiting import wait_all

@fn.task
def divide(n: int) -> float:
    print("dividing", n)
    return 10 / n

@fn.workflow(name="calc")
async def calc(ctx: WorkflowContext, n: int) -> float:
    await ctx.promise("go")
    return await ctx.schedule(divide, n)
"""


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[Kernel]:
    cwd = tmp_path / "kernel"
    cwd.mkdir()
    started = Kernel(
        cwd, {"FLOVYN_NB_STORE": str(tmp_path / "store.duckdb"), "FLOVYN_NB_MODE": None}
    ).start()
    yield started
    started.shutdown()


def _usage_error(cell: Cell) -> str:
    assert cell.status == "error" and cell.error is None, cell.describe()
    [line] = cell.stderr.strip().splitlines()
    assert line.startswith("UsageError: %flovyn"), cell.describe()
    return line


def test_check_replays_in_flight_runs_on_the_current_code(kernel: Kernel) -> None:
    kernel.run("%load_ext flovyn_nb")
    kernel.run(CELLS)
    nothing = kernel.run("%flovyn check calc")
    assert nothing.stdout == "no runs of 'calc' in flight: nothing to check\n"
    kernel.run('fn.start_workflow(calc, 2, workflow_id="c-1")\nwait_all(timeout=30)')
    ok = kernel.run("%flovyn check calc")
    assert ok.stdout.splitlines() == [
        "c-1: replays OK (1 step(s); end of history (next: waiting on 'go'))",
        "1 run(s) checked against the code registered now: all replay OK",
    ], ok.describe()
    kernel.run(CELLS.replace('ctx.promise("go")', 'ctx.promise("go2")'))
    bad = kernel.run("%flovyn check calc --run c-1")
    assert bad.stdout.splitlines() == [
        "c-1: breaks at step 1: history recorded promise('go'), the code now issues promise('go2')",
        "1 run(s) checked against the code registered now: 1 would fail with DeterminismViolation",
    ], bad.describe()
    assert "no workflow named 'nope'" in _usage_error(kernel.run("%flovyn check nope", ok=False))
    assert "no run with workflow id 'x'" in _usage_error(
        kernel.run("%flovyn check calc --run x", ok=False)
    )
    assert "missing NAME" in _usage_error(kernel.run("%flovyn check", ok=False))


def test_debug_puts_a_failed_steps_record_in_the_namespace(kernel: Kernel) -> None:
    kernel.run("%load_ext flovyn_nb")
    kernel.run(CELLS)
    kernel.run(
        'h = fn.start_workflow(calc, 0, workflow_id="d-1")\nwait_all(timeout=30)\n'
        'fn.resolve_promise("d-1", "go", True)\n'
        "try:\n    h.result(timeout=30)\nexcept fn.WorkflowFailed:\n    pass"
    )
    shown = kernel.run("%flovyn debug d-1 2")
    assert shown.stdout == (
        "step 2 'divide' of run 'd-1' (FAILED): set step_input, step_output, step_error, "
        "step_record; step_record.rerun() calls the task as defined now\n"
    ), shown.describe()
    got = kernel.run("step_input, step_output, step_error.type, step_record.logs[0].message")
    assert got.result == "(0, None, 'ZeroDivisionError', 'dividing 0')"
    # Fix the task in a cell, and run it on the recorded input.
    kernel.run("@fn.task\ndef divide(n: int) -> float:\n    return 10 / max(n, 1)")
    assert kernel.run("step_record.rerun()").result == "10.0"
    by_name = kernel.run('%flovyn debug d-1 "divide"')
    assert by_name.stdout.startswith("step 2 'divide'"), by_name.describe()
    promise = kernel.run("%flovyn debug d-1 1\nstep_output")
    assert promise.result == "True", promise.describe()
    assert "no step 7 (its steps: 1..2)" in _usage_error(
        kernel.run("%flovyn debug d-1 7", ok=False)
    )
    assert "no step named 'nope'" in _usage_error(kernel.run("%flovyn debug d-1 nope", ok=False))
    assert "no run with workflow id 'zz'" in _usage_error(
        kernel.run("%flovyn debug zz 1", ok=False)
    )
    assert "missing STEP" in _usage_error(kernel.run("%flovyn debug d-1", ok=False))
