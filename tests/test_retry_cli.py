"""Issue 15 across processes: ``flovyn-nb retry`` / ``fork`` (no engine in the CLI
process) write the store; the engine that has the workflow registered, in another
process (here: the test's), claims the run and completes it."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.model import RunStatus

CLI = [sys.executable, "-m", "flovyn_nb.cli"]
calls: Counter[str] = Counter()
broken = {"now": True}


def cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@fn.task(name="retry-cli-step")
def step(name: str) -> str:
    calls[name] += 1
    if name == "fragile" and broken["now"]:
        raise OSError("disk on fire")
    return name


@fn.workflow(name="retry-cli-flow")
async def flow(ctx: fn.WorkflowContext) -> str:
    first = await ctx.schedule(step, "first")
    second = await ctx.schedule(step, "fragile")
    return f"{first}+{second}"


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    broken["now"] = True


def test_a_retry_from_the_cli_is_run_by_the_engine_of_another_process(
    engine: Runtime, store_path: Path
) -> None:
    h = fn.start_workflow(flow, workflow_id="rc-1")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    broken["now"] = False
    done = cli("retry", "rc-1", store=store_path)
    assert done.returncode == 0, done.stderr
    assert "retrying rc-1 (attempt 2) from step 2" in done.stdout
    # The CLI process has no engine: this process's engine claims the reopened run (the
    # retry rings the store's work bell) and completes it.
    assert h.result(timeout=60) == "first+fragile"
    assert calls == {"first": 1, "fragile": 2}
    shown = cli("show", "rc-1", store=store_path)
    assert "attempt 2 (retried from step 2)" in " ".join(shown.stdout.split()), shown.stdout
    again = cli("retry", "rc-1", store=store_path)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        (
            "Error: run 'rc-1' is completed: only a failed or cancelled run can be retried; "
            "fork it instead (fn.fork_run) to run steps again in a new run"
        )
    ]


def test_a_fork_from_the_cli_is_run_by_the_engine_of_another_process(
    engine: Runtime, store_path: Path
) -> None:
    broken["now"] = False
    assert fn.start_workflow(flow, workflow_id="rc-src").result(timeout=30) == "first+fragile"
    calls.clear()
    done = cli("fork", "rc-src", "2", "--id", "rc-copy", store=store_path)
    assert done.returncode == 0, done.stderr
    assert "forked rc-src from step 2 as rc-copy" in done.stdout
    handle = fn.get_handle("rc-copy")
    assert handle.result(timeout=60) == "first+fragile"
    assert calls == {"fragile": 1}
    shown = cli("show", "rc-copy", store=store_path)
    assert "forked from rc-src at step 2" in " ".join(shown.stdout.split()), shown.stdout
    assert fn.get_run("rc-src").status is RunStatus.COMPLETED
    bad = cli("fork", "rc-src", "7", store=store_path)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "Error: cannot fork 'rc-src': step 7 is out of range: the run has 2 steps (number them from 1)"
    ]
    unknown = cli("retry", "rc-nope", store=store_path)
    assert unknown.returncode == 1 and "no run with workflow id 'rc-nope'" in unknown.stderr
    bad_json = cli("fork", "rc-src", "1", "--input", "{oops", store=store_path)
    assert bad_json.returncode == 1 and "--input is not valid JSON" in bad_json.stderr
