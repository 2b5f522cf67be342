"""CLI rough edges of issue 16 (item 9), each on real processes and a real store file.

(``runs --limit -1`` is covered by tests/test_cli_errors.py, ``run nope.ipynb`` by
tests/test_batch.py::test_bad_notebook_argument_is_one_line.)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "flovyn_nb.cli"]
NOTEBOOKS = Path(__file__).parent / "batch_notebooks"

RUNS = textwrap.dedent(
    """
    import sys
    import flovyn_nb as fn

    @fn.task(name="load-rows")
    def load_rows(n: int) -> int:
        print("loading", n)
        return n

    @fn.task(name="explode")
    def explode(n: int) -> int:
        raise ValueError(f"row {n} is bad")

    @fn.workflow(name="edges-fails")
    async def fails(ctx: fn.WorkflowContext) -> int:
        await ctx.schedule(load_rows, 1)
        await ctx.schedule(load_rows, 2)
        return await ctx.schedule(explode, 3)

    @fn.workflow(name="edges-quiet")
    async def quiet(ctx: fn.WorkflowContext) -> int:
        return 1

    @fn.workflow(name="edges-asks")
    async def asks(ctx: fn.WorkflowContext) -> str:
        return await ctx.promise("answer")

    with fn.start(sys.argv[1]):
        fn.start_workflow(asks, workflow_id="asks-1")
        fn.testing.wait_until(lambda: fn.pending_promises("asks-1"), timeout=60)
        h = fn.start_workflow(fails, workflow_id="fails-1")
        try:
            h.result(timeout=60)
        except fn.errors.FlovynError:
            pass
        fn.start_workflow(quiet, workflow_id="quiet-1").result(timeout=60)
    """
)


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "FLOVYN_NB_STORE"}
    return subprocess.run(
        [*CLI, *args], check=False, capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("edges")
    script = folder / "runs.py"
    script.write_text(RUNS)
    path = folder / "s.duckdb"
    subprocess.run([sys.executable, str(script), str(path)], check=True, timeout=120)
    return path


def test_show_prints_the_traceback_of_a_failed_run(store: Path) -> None:
    shown = cli("show", "fails-1", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert "Traceback (most recent call last)" in shown.stdout
    assert 'raise ValueError(f"row {n} is bad")' in shown.stdout
    assert "ValueError: row 3 is bad" in shown.stdout
    # The engine's own frames are hidden, and it says so.
    assert "flovyn_nb/engine/" not in shown.stdout
    assert "engine frame(s) hidden" in shown.stdout


def test_logs_are_labelled_by_step_name(store: Path) -> None:
    logs = cli("logs", "fails-1", "--store", str(store))
    assert logs.returncode == 0, logs.stderr
    lines = [line for line in logs.stdout.splitlines() if "loading" in line]
    assert len(lines) == 2, logs.stdout
    assert " load-rows " in lines[0] and lines[0].endswith("loading 1")
    assert " load-rows #2 " in lines[1] and lines[1].endswith("loading 2")


def test_logs_of_a_run_without_logs_says_so(store: Path) -> None:
    logs = cli("logs", "quiet-1", "--store", str(store))
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == "no log lines for run quiet-1"


def test_run_prints_no_unencrypted_tcp_warning(tmp_path: Path) -> None:
    notebook = tmp_path / "nb.ipynb"
    shutil.copy(NOTEBOOKS / "failing_run.ipynb", notebook)
    result = cli("run", str(notebook), "--no-progress", "--store", str(tmp_path / "s.duckdb"))
    assert "output notebook:" in result.stdout, result.stderr
    assert "without encryption" not in result.stderr
    assert "WARNING" not in result.stderr


def test_show_says_why_a_run_waits_when_no_engine_has_its_workflow(store: Path) -> None:
    # The process that started asks-1 exited: no live engine has "edges-asks" loaded.
    shown = cli("show", "asks-1", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    assert (
        "why is it waiting? no kernel or worker has workflow 'edges-asks' loaded — run its "
        "defining cell (or start a worker with it) to continue this run"
    ) in shown.stdout
    assert "why is it waiting?" not in cli("show", "quiet-1", "--store", str(store)).stdout
