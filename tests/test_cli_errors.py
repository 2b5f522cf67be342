"""Bad input to the CLI: one line on stderr, a sensible exit code, nothing changed.

Real subprocesses of the CLI on real files; each case also checks that no file appeared
(no output notebook, no store) or that the store's record is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import flovyn_nb as fn
from flovyn_nb.testing import wait_until

CLI = [sys.executable, "-m", "flovyn_nb.cli"]
HERE = Path(__file__).resolve().parent / "batch_notebooks"


def cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=None if env is None else {**os.environ, **env},
    )


def one_line(result: subprocess.CompletedProcess[str], code: int) -> str:
    """The one stderr line of a refused command (asserting the shape of the refusal)."""
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    for leak in ("Traceback", "Usage:", "Binder Error", "LINE 1"):
        assert leak not in result.stderr
    return lines[0]


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# -- flovyn-nb run: what can be checked before a kernel starts is ---------------------------


def _notebook_bytes(kind: str) -> bytes:
    good = (HERE / "raising_cell.ipynb").read_bytes()
    return {
        "empty": b"",
        "random": bytes(range(256)) * 4,
        "json, not a notebook": json.dumps({"name": "config", "cells": 3}).encode(),
        "a JSON list": b"[1, 2, 3]",
        "truncated": good[: len(good) // 2],
        "newer format": json.dumps({"nbformat": 99, "nbformat_minor": 0}).encode(),
        "invalid cells": json.dumps(
            {
                "nbformat": 4,
                "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
                "cells": [{"x": 1}],
            }
        ).encode(),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("empty", "is empty (0 bytes), not a notebook"),
        ("random", "is not a notebook: it is not UTF-8 text"),
        ("json, not a notebook", "is JSON but not a Jupyter notebook"),
        ("a JSON list", "is JSON but not a Jupyter notebook"),
        ("truncated", "invalid JSON at line"),
        ("newer format", "is not a notebook this Jupyter can run: nbformat 99"),
        ("invalid cells", "is not a valid notebook"),
    ],
)
def test_run_refuses_a_file_that_is_not_a_notebook(tmp_path: Path, kind: str, message: str) -> None:
    notebook = tmp_path / "broken.ipynb"
    notebook.write_bytes(_notebook_bytes(kind))
    before = listing(tmp_path)
    line = one_line(cli("run", str(notebook), "--no-progress", cwd=tmp_path), 1)
    assert str(notebook) in line and message in line, line
    assert line.endswith("and run again"), line  # and what to do about it
    assert listing(tmp_path) == before  # no .flovyn/, no output notebook, no store


def test_run_refuses_a_kernel_that_is_not_installed(tmp_path: Path) -> None:
    before = listing(tmp_path)
    line = one_line(
        cli(
            "run",
            str(HERE / "raising_cell.ipynb"),
            "--kernel",
            "no-such-kernel",
            "--no-progress",
            cwd=tmp_path,
        ),
        1,
    )
    assert "the Jupyter kernel 'no-such-kernel', which is not installed" in line
    assert "python3" in line  # it names the kernels that are installed
    assert listing(tmp_path) == before


def test_run_refuses_a_notebook_that_names_no_kernel(tmp_path: Path) -> None:
    notebook = tmp_path / "bare.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), notebook)
    before = listing(tmp_path)
    line = one_line(cli("run", str(notebook), "--no-progress", cwd=tmp_path), 1)
    assert "names no kernel" in line and "--kernel NAME" in line
    assert listing(tmp_path) == before


def test_run_refuses_a_parameter_that_is_not_a_variable_name(tmp_path: Path) -> None:
    before = listing(tmp_path)
    result = cli("run", str(HERE / "raising_cell.ipynb"), "-p", "a b", "1", cwd=tmp_path)
    line = one_line(result, 2)
    assert "'a b' is not a Python variable name" in line
    assert listing(tmp_path) == before


# -- --store naming a folder -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("runs",),
        ("promises", "--json"),
        ("resolve", "w", "p", "--value", "1"),
        ("sql", "select 1"),
        ("run", str(HERE / "raising_cell.ipynb"), "--no-progress"),
    ],
)
def test_a_store_that_is_a_folder_is_one_line_by_option_and_by_environment(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    expected = f"Error: the store path {folder} is a folder; name a file"
    by_option = cli(*args, "--store", str(folder), cwd=tmp_path)
    by_env = cli(*args, cwd=tmp_path, env={"FLOVYN_NB_STORE": str(folder)})
    assert one_line(by_option, 1) == expected
    assert one_line(by_env, 1) == expected
    assert listing(tmp_path) == {"adir"}


# -- runs --limit, usage errors, JSON values --------------------------------------------------


@fn.workflow(name="errors-done")
async def done(ctx: fn.WorkflowContext, n: int) -> int:
    return n


@fn.workflow(name="errors-waits")
async def waits(ctx: fn.WorkflowContext) -> object:
    return await ctx.promise("approval")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "s.duckdb"
    with fn.start(path):
        for n in range(3):
            fn.start_workflow(done, n, workflow_id=f"done-{n}").result(timeout=30)
        fn.start_workflow(waits, workflow_id="waits")
        wait_until(lambda: fn.pending_promises(store=path), timeout=30)
    return path


def digest(store: Path) -> str:
    return hashlib.sha256(store.read_bytes()).hexdigest()


@pytest.mark.parametrize("limit", ["-1", "0", "-100", "x"])
def test_runs_limit_must_be_a_positive_number(store: Path, limit: str) -> None:
    line = one_line(cli("runs", "--limit", limit, "--store", str(store)), 2)
    assert "Invalid value for '--limit'" in line
    assert "--help" in line


def test_runs_limit_limits(store: Path) -> None:
    result = cli("runs", "--limit", "2", "--json", "--store", str(store))
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("resolve",), "Missing argument 'WORKFLOW_ID'"),
        (("resolve", "waits", "approval"), "Missing option '--value'"),
        (("runs", "--limt", "3"), "No such option '--limt'. Did you mean '--limit'?"),
        (("runz",), "No such command 'runz'"),
        (("show",), "Missing argument 'WORKFLOW_ID'"),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(
    store: Path, args: tuple[str, ...], message: str
) -> None:
    before = digest(store)
    line = one_line(cli(*args, "--store", str(store)), 2)
    assert message in line and "--help" in line, line
    assert digest(store) == before


@pytest.mark.parametrize("value", ["NaN", "[1, Infinity]", '{"x": -Infinity}'])
def test_values_that_are_not_json_are_refused(store: Path, value: str) -> None:
    before = digest(store)
    line = one_line(cli("resolve", "waits", "approval", "--value", value, "--store", str(store)), 1)
    assert "--value is not valid JSON" in line and "is not a JSON number" in line
    assert digest(store) == before
    assert fn.pending_promises("waits", store=store)


def test_the_bare_command_and_help_still_print_the_whole_help() -> None:
    bare = cli()
    assert "Commands:" in bare.stdout + bare.stderr and "Error:" not in bare.stderr
    helped = cli("resolve", "--help")
    assert helped.returncode == 0 and "Usage:" in helped.stdout and "--value" in helped.stdout
