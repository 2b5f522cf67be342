"""Command lines the CLI prints for pasting are quoted: pasted into bash, they do exactly that.

Each test runs the printed command in a real ``bash -c`` against a real store file, with a
``flovyn-nb`` on PATH that runs this checkout's CLI.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.testing import wait_until

CLI = [sys.executable, "-m", "flovyn_nb.cli"]
# A shell substitution, a quote, a space, an option look-alike, and the end-of-options mark.
NASTY_IDS = ["$(touch PWNED)", "it's", "a b", "--x", "`touch PWNED`; touch PWNED"]


@fn.workflow(name="quoting-waits")
async def waits(ctx: fn.WorkflowContext) -> object:
    return await ctx.promise("approval")


def _store_waiting_on(path: Path, ids: list[str]) -> None:
    """Runs under these ids, each waiting on promise 'approval'; the engine then stops."""
    with fn.start(path):
        for workflow_id in ids:
            fn.start_workflow(waits, workflow_id=workflow_id)
        wait_until(lambda: len(fn.pending_promises(store=path)) == len(ids), timeout=30)


def _bash(command: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``command`` pasted into bash in ``folder``, with this checkout's ``flovyn-nb``."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "flovyn-nb"
    script.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m flovyn_nb.cli "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-c", command],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _with_value(command: str, value: object) -> str:
    """What the user does with the printed command: put a JSON value for <JSON>."""
    assert command.count("'<JSON>'") == 1, command
    return command.replace("'<JSON>'", shlex.quote(json.dumps(value)))


def _resolved(store: Path) -> dict[str, object]:
    rows = fn.sql(
        "select e.workflow_id, p.status, p.value from promises p "
        "join workflow_executions e on e.id = p.execution_id",
        store=store,
    )
    return {
        row.workflow_id: json.loads(row.value)
        for row in rows.itertuples()
        if row.status == "RESOLVED"
    }


def test_resolve_commands_from_promises_json_run_as_printed_in_bash(tmp_path: Path) -> None:
    store = tmp_path / "quoting.duckdb"
    _store_waiting_on(store, NASTY_IDS)
    listed = subprocess.run(
        [*CLI, "promises", "--json", "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    commands = {p["workflow_id"]: p["resolve_command"] for p in json.loads(listed.stdout)}
    assert set(commands) == set(NASTY_IDS)
    shell = tmp_path / "shell"
    shell.mkdir()
    for workflow_id, command in commands.items():
        done = _bash(_with_value(command, {"for": workflow_id}), shell)
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout.strip() == f"resolved {workflow_id}/approval"
    assert not list(tmp_path.rglob("PWNED"))
    assert _resolved(store) == {wid: {"for": wid} for wid in NASTY_IDS}


def test_show_prints_a_whole_resolve_command_for_a_dashed_id(tmp_path: Path) -> None:
    store = tmp_path / "show.duckdb"
    _store_waiting_on(store, ["--x [bold]y[/bold] $(touch PWNED)"])
    shown = subprocess.run(
        [*CLI, "show", "--store", str(store), "--", "--x [bold]y[/bold] $(touch PWNED)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    # rich markup in the id is printed as is, not eaten
    assert "--x [bold]y[/bold] $(touch PWNED)" in shown.stdout.splitlines()[0]
    [command] = [line.strip() for line in shown.stdout.splitlines() if "flovyn-nb resolve" in line]
    done = _bash(_with_value(command, True), tmp_path)
    assert done.returncode == 0, (command, done.stderr)
    assert not list(tmp_path.rglob("PWNED"))
    assert _resolved(store) == {"--x [bold]y[/bold] $(touch PWNED)": True}


@pytest.mark.parametrize(
    "workflow_id", [*NASTY_IDS, "--", "-h", "", "new\nline", "tab\there", "ü ✓"]
)
def test_command_line_splits_back_into_the_same_words(workflow_id: str) -> None:
    from flovyn_nb.cli import command_line

    line = command_line("resolve", [workflow_id, "approval"], [("--store", "/s/f.duckdb")])
    words = shlex.split(line)
    assert words[0:2] == ["flovyn-nb", "resolve"]
    if workflow_id.startswith("-"):
        assert words[2:] == ["--store", "/s/f.duckdb", "--", workflow_id, "approval"]
    else:
        assert words[2:] == [workflow_id, "approval", "--store", "/s/f.duckdb"]


def test_the_exit_3_hint_of_a_batch_run_resolves_as_printed(tmp_path: Path) -> None:
    store = tmp_path / "batch.duckdb"
    workflow_id = "--x $(touch PWNED) it's"
    notebook = Path(__file__).resolve().parent / "batch_notebooks" / "suspends.ipynb"
    batch = subprocess.run(
        [
            *CLI,
            "run",
            str(notebook),
            "-p",
            "workflow_id",
            workflow_id,
            "--output",
            str(tmp_path / "out.ipynb"),
            "--no-progress",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert batch.returncode == 3, batch.stdout + batch.stderr
    [command] = [line.strip() for line in batch.stdout.splitlines() if "flovyn-nb resolve" in line]
    shell = tmp_path / "shell"
    shell.mkdir()
    done = _bash(_with_value(command, "yes"), shell)
    assert done.returncode == 0, (command, done.stderr)
    assert not list(tmp_path.rglob("PWNED"))
    assert _resolved(store) == {workflow_id: "yes"}
