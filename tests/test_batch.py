"""`flovyn-nb run`: notebooks run unattended with papermill, resumed the next time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat

import flovyn_nb as fn
from flovyn_nb.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent / "batch_notebooks"
CLI = [sys.executable, "-m", "flovyn_nb.cli"]


def flovyn(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def outputs_text(path: Path) -> str:
    notebook = nbformat.read(path, as_version=4)
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def test_suspended_then_resumed_after_an_answer(tmp_path: Path) -> None:
    store = tmp_path / "flovyn.duckdb"
    first_out = tmp_path / "first.ipynb"
    first = flovyn(
        "run",
        str(ROOT / "notebooks" / "04_batch_etl.ipynb"),
        "-p",
        "day",
        "2030-01-02",
        "--output",
        str(first_out),
        "--no-progress",
        store=store,
    )
    assert first.returncode == 3, first.stdout + first.stderr
    command = f"flovyn-nb resolve daily-etl-2030-01-02 publish --value '<JSON>' --store {store}"
    assert command in first.stdout
    assert "WAITING" in outputs_text(first_out)

    answer = flovyn(
        "resolve",
        "daily-etl-2030-01-02",
        "publish",
        "--value",
        '{"approved": true, "by": "test"}',
        store=store,
    )
    assert answer.returncode == 0, answer.stderr

    second_out = tmp_path / "second.ipynb"
    second = flovyn(
        "run",
        str(ROOT / "notebooks" / "04_batch_etl.ipynb"),
        "-p",
        "day",
        "2030-01-02",
        "--output",
        str(second_out),
        "--no-progress",
        store=store,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    text = outputs_text(second_out)
    assert "COMPLETED" in text and "loaded 270 units" in text
    # resumed, not started twice: one run of the pipeline, its load step done once
    runs = fn.list_runs(kind="daily-etl", store=store)
    assert [(r.workflow_id, r.status.value) for r in runs] == [
        ("daily-etl-2030-01-02", "COMPLETED")
    ]
    loads = fn.sql("select count(*) as n from tasks where kind = 'load'", store=store)
    assert loads["n"][0] == 1


def test_a_failed_run_exits_1_with_its_error(tmp_path: Path) -> None:
    result = flovyn(
        "run",
        str(HERE / "failing_run.ipynb"),
        "-p",
        "label",
        "b7",
        "--output",
        str(tmp_path / "out.ipynb"),
        "--no-progress",
        store=tmp_path / "s.duckdb",
    )
    assert result.returncode == 1
    assert "run broken-b7 failed: RuntimeError: cannot process b7" in result.stderr


def test_a_raising_cell_exits_1(tmp_path: Path) -> None:
    result = flovyn(
        "run",
        str(HERE / "raising_cell.ipynb"),
        "--output",
        str(tmp_path / "out.ipynb"),
        "--no-progress",
        store=tmp_path / "s.duckdb",
    )
    assert result.returncode == 1
    assert "a cell failed: cell 2 raised ZeroDivisionError" in result.stderr


def test_an_answer_from_another_process_lets_a_waiting_batch_finish(tmp_path: Path) -> None:
    store = tmp_path / "shared.duckdb"
    out = tmp_path / "out.ipynb"
    batch = subprocess.Popen(
        [
            *CLI,
            "run",
            str(HERE / "waits_for_answer.ipynb"),
            "-p",
            "label",
            "q4",
            "--output",
            str(out),
            "--no-progress",
            "--store",
            str(store),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the user, in their own notebook or terminal, answers while the batch still waits
        wait_until(
            lambda: store.exists() and fn.pending_promises("waits-q4", store=store), timeout=120
        )
        fn.resolve_promise("waits-q4", "go", "approved", store=store)
        stdout, stderr = batch.communicate(timeout=120)
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.communicate()
    assert batch.returncode == 0, stdout + stderr
    assert "RESULT q4: approved" in outputs_text(out)


def test_bad_notebook_argument_is_one_line(tmp_path: Path) -> None:
    result = flovyn("run", str(tmp_path / "nope.ipynb"), store=tmp_path / "s.duckdb")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        (
            f"Error: the notebook {tmp_path / 'nope.ipynb'} does not exist "
            f"(looked in {tmp_path}); check the name and the folder"
        )
    ]


def test_a_kernel_that_dies_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    notebook = tmp_path / "dies.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import os\nos._exit(1)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, notebook)
    out = tmp_path / "out.ipynb"
    result = flovyn(
        "run", str(notebook), "--output", str(out), "--no-progress", store=tmp_path / "s.duckdb"
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    # the kernel's own stderr lines may come before it; ours is one line
    assert "a cell failed: the kernel died" in result.stderr
    assert f"{out} shows how far it got" in result.stderr
