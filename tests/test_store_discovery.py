"""One store, found the same way everywhere (issue 16 item 7): real folders, a real
kernel in ``notebooks/`` and the ``flovyn-nb`` command at the project's root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flovyn_nb.store import default_store_path, discover_store
from tests.kernel_harness.harness import Kernel

CLI = [sys.executable, "-m", "flovyn_nb.cli"]


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "FLOVYN_NB_STORE"}
    environment.update(env or {})
    return subprocess.run(
        [*CLI, *args],
        check=False,
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A repository: ``.git`` at its top, a ``notebooks/`` folder below."""
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "notebooks" / "deep").mkdir(parents=True)
    return root


def store_of(path: Path) -> Path:
    return path / ".flovyn" / "flovyn.duckdb"


# -- the rule ---------------------------------------------------------------------------


def test_a_new_project_keeps_its_store_at_its_top(project: Path) -> None:
    assert discover_store(project / "notebooks" / "deep") == store_of(project)
    assert discover_store(project) == store_of(project)


def test_pyproject_marks_a_project_too(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "src").mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert discover_store(tmp_path / "pkg" / "src") == store_of(tmp_path / "pkg")


def test_the_nearest_existing_store_folder_wins(project: Path) -> None:
    (project / ".flovyn").mkdir()
    (project / "notebooks" / ".flovyn").mkdir()
    assert discover_store(project / "notebooks" / "deep") == store_of(project / "notebooks")
    assert discover_store(project) == store_of(project)


def test_outside_a_project_the_working_folder(tmp_path: Path) -> None:
    (tmp_path / "loose").mkdir()
    assert discover_store(tmp_path / "loose") == store_of((tmp_path / "loose").resolve())


def test_no_store_above_the_project_is_taken(tmp_path: Path) -> None:
    # A .flovyn/ in a folder holding the project (say ~/ or /tmp) is not this project's.
    (tmp_path / ".flovyn").mkdir()
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    assert discover_store(tmp_path / "repo") == store_of(tmp_path / "repo")


def test_the_environment_overrides_discovery(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(project / "notebooks")
    assert default_store_path().resolve() == store_of(project)
    monkeypatch.setenv("FLOVYN_NB_STORE", str(tmp_path / "elsewhere.duckdb"))
    assert default_store_path() == tmp_path / "elsewhere.duckdb"


# -- kernel in notebooks/, CLI at the root ------------------------------------------------

APPROVAL = """
import flovyn_nb as fn
@fn.workflow(name="discovery")
async def discovery(ctx: fn.WorkflowContext) -> str:
    return await ctx.promise("go")
h = fn.start_workflow(discovery, workflow_id="found-1")
"""


@pytest.fixture
def kernel_in_notebooks(project: Path) -> Iterator[Kernel]:
    kernel = Kernel(project / "notebooks", {"FLOVYN_NB_STORE": None, "FLOVYN_NB_MODE": None})
    kernel.start()
    try:
        yield kernel
    finally:
        kernel.shutdown()


def test_a_kernel_in_notebooks_and_the_cli_at_the_root_meet_in_one_store(
    project: Path, kernel_in_notebooks: Kernel
) -> None:
    loaded = kernel_in_notebooks.run("%load_ext flovyn_nb")
    # The kernel says where the store is, and it is the project's.
    assert str(store_of(project)) in loaded.stdout, loaded.describe()
    kernel_in_notebooks.run(APPROVAL)
    listed = cli("promises", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr
    [promise] = json.loads(listed.stdout)
    assert promise["workflow_id"] == "found-1"
    resolved = cli("resolve", "found-1", "go", "--value", '"yes"', cwd=project)
    assert resolved.returncode == 0, resolved.stderr
    done = kernel_in_notebooks.run("h.result(timeout=60)")
    assert done.result == "'yes'"
    assert not (project / "notebooks" / ".flovyn").exists()


def test_wait_all_hint_names_the_store_when_the_cli_would_not_find_it(
    project: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere.duckdb"
    kernel = Kernel(
        project / "notebooks", {"FLOVYN_NB_STORE": str(elsewhere), "FLOVYN_NB_MODE": None}
    )
    kernel.start()
    try:
        kernel.run("%load_ext flovyn_nb")
        kernel.run(APPROVAL)
        summary = kernel.run("print(repr(fn.wait_all(timeout=60)))")
    finally:
        kernel.shutdown()
    assert f"flovyn-nb resolve ID NAME --value VALUE_JSON --store {elsewhere}" in summary.stdout


def test_wait_all_hint_has_no_store_option_when_discovery_finds_it(
    kernel_in_notebooks: Kernel,
) -> None:
    kernel_in_notebooks.run("%load_ext flovyn_nb")
    kernel_in_notebooks.run(APPROVAL)
    summary = kernel_in_notebooks.run("print(repr(fn.wait_all(timeout=60)))")
    assert "flovyn-nb resolve ID NAME --value VALUE_JSON." in summary.stdout, summary.describe()


# -- every error names the store ------------------------------------------------------------


def test_errors_name_the_store_they_looked_in(project: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-c", "import flovyn_nb as fn; fn.start(); fn.stop()"],
        cwd=project,
        env={k: v for k, v in os.environ.items() if k != "FLOVYN_NB_STORE"},
        timeout=60,
        check=True,
    )
    assert made.returncode == 0
    store = store_of(project)
    for args in (
        ("show", "nope"),
        ("logs", "nope"),
        ("resolve", "nope", "p", "--value", "1"),
        ("reject", "nope", "p", "--reason", "r"),
        ("signal", "nope", "s"),
        ("cancel", "nope"),
    ):
        result = cli(*args, cwd=project / "notebooks")
        assert result.returncode == 1, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (args, lines)
        assert str(store) in lines[0], (args, lines)
    listed = cli("promises", cwd=project / "notebooks")
    assert str(store) in listed.stdout
