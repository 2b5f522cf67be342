"""What an engine changes in its process while it runs, and gives back when it stops."""

from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

import flovyn_nb as fn
from flovyn_nb.testing import temporary_engine


@fn.workflow(name="tuning-steps")
async def steps(ctx: fn.WorkflowContext, n: int) -> int:
    for _ in range(n):
        await ctx.run("noop", lambda: None)
    return n


def test_the_switch_interval_is_short_while_an_engine_runs(store_path: Path) -> None:
    before = sys.getswitchinterval()
    with temporary_engine(store=store_path):
        assert sys.getswitchinterval() <= 0.0005
    assert sys.getswitchinterval() == before


def test_a_configured_interval_and_none_are_respected(store_path: Path) -> None:
    before = sys.getswitchinterval()
    with temporary_engine(store=store_path, switch_interval=None):
        assert sys.getswitchinterval() == before
    with temporary_engine(store=store_path, switch_interval=0.002):
        assert sys.getswitchinterval() == min(before, 0.002)
    assert sys.getswitchinterval() == before


def test_the_collector_is_tuned_while_an_engine_runs(store_path: Path) -> None:
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    with temporary_engine(store=store_path):
        assert gc.get_freeze_count() > 0  # what existed before the engine is frozen
        young, middle, old = gc.get_threshold()
        assert (young, middle) == thresholds[:2]
        assert old >= 100  # full collections are rarer
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == thresholds
    with temporary_engine(store=store_path, tune_gc=False):
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == thresholds


def test_steps_go_on_while_another_thread_runs_python(store_path: Path) -> None:
    """A notebook cell crunching numbers in pure Python must not stall the engine: the
    steps finish, with the short switch interval (the mechanism: with the default 5 ms
    each step took ~40 ms) in force. The cost per step next to a busy thread is a figure
    of ``make bench`` (step_overhead, ms_per_step_busy), not asserted here."""
    stop = threading.Event()

    def crunch() -> None:
        x = 0
        while not stop.is_set():
            x += 1

    with temporary_engine(store=store_path):
        fn.start_workflow(steps, 5).result(timeout=30)  # warm up
        spinner = threading.Thread(target=crunch, daemon=True)
        spinner.start()
        try:
            assert sys.getswitchinterval() <= 0.0005
            assert fn.start_workflow(steps, 50).result(timeout=60) == 50
        finally:
            stop.set()
            spinner.join()
