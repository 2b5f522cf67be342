"""flovyn-nb check: replay recorded runs on code from a module, file or notebook (no engine)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.testing import wait_until

CLI = [sys.executable, "-m", "flovyn_nb.cli"]

V1 = textwrap.dedent(
    """
    import flovyn_nb as fn

    @fn.task(name="chk-fetch")
    def fetch(n: int) -> int:
        with open(__import__("os").environ["CHECK_SIDE_EFFECT"], "a") as out:
            out.write("ran\\n")
        return n + 1

    @fn.workflow(name="chk-flow")
    async def flow(ctx: fn.WorkflowContext, n: int) -> int:
        a = await ctx.schedule(fetch, n)
        await ctx.promise("go")
        return a
    """
)
V2_BROKEN = V1.replace('await ctx.promise("go")', 'await ctx.promise("go-2")')


def cli(*args: str, store: Path, side: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHECK_SIDE_EFFECT": str(side)}
    return subprocess.run(
        [*CLI, *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def _record(store: Path, side: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_SIDE_EFFECT", str(side))
    import importlib.util

    (store.parent / "recorded_v1.py").write_text(V1)
    spec = importlib.util.spec_from_file_location("recorded_v1", store.parent / "recorded_v1.py")
    assert spec is not None and spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    with fn.start(store):
        fn.start_workflow("chk-flow", 1, workflow_id="chk-1")
        wait_until(lambda: fn.pending_promises("chk-1", store=store), message="not waiting")
    side.unlink()


def _notebook(path: Path, source: str) -> None:
    cells = [
        {"cell_type": "code", "source": "%load_ext flovyn_nb", "metadata": {}, "outputs": []},
        {"cell_type": "code", "source": source, "metadata": {}, "outputs": []},
        {
            "cell_type": "code",
            "source": 'fn.start_workflow(flow, 5, workflow_id="from-notebook")\nprint("PRINTED-BY-NOTEBOOK")',
            "metadata": {},
            "outputs": [],
        },
    ]
    path.write_text(
        json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )


def test_check_exits_0_when_runs_replay_and_1_naming_the_step_when_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, side = tmp_path / "s.duckdb", tmp_path / "side-effects.txt"
    _record(store, side, monkeypatch)
    (tmp_path / "same.py").write_text(V1)
    (tmp_path / "broken.py").write_text(V2_BROKEN)

    ok = cli("check", "chk-flow", "--module", str(tmp_path / "same.py"), store=store, side=side)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        "chk-1: replays OK (2 step(s); end of history (next: waiting on 'go'))",
        "1 run(s) of 'chk-flow' checked: all replay OK",
    ]
    bad = cli("check", "chk-flow", "-m", str(tmp_path / "broken.py"), store=store, side=side)
    assert bad.returncode == 1, bad.stderr
    assert bad.stdout.splitlines()[0] == (
        "chk-1: breaks at step 2: history recorded promise('go'), "
        "the code now issues promise('go-2')"
    )
    as_json = cli(
        "check", "chk-flow", "-m", str(tmp_path / "broken.py"), "--json", store=store, side=side
    )
    assert as_json.returncode == 1
    [item] = json.loads(as_json.stdout)
    assert item["ok"] is False and item["workflow_id"] == "chk-1"
    assert item["error"]["type"] == "DeterminismViolation"
    assert (item["error"]["step"], item["error"]["issued"]) == (2, "promise('go-2')")

    # Definitions from a notebook: its imports and definitions only (nothing is started).
    _notebook(tmp_path / "same.ipynb", V1)
    nb = cli("check", "chk-flow", "-m", str(tmp_path / "same.ipynb"), store=store, side=side)
    assert nb.returncode == 0, nb.stderr
    assert "PRINTED-BY-NOTEBOOK" not in nb.stdout
    assert [r.workflow_id for r in fn.list_runs(store=store)] == ["chk-1"]
    assert not side.exists()  # no task body ran in any check
    assert fn.get_run("chk-1", store=store).status.value == "WAITING"


def test_check_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store, side = tmp_path / "s.duckdb", tmp_path / "side-effects.txt"
    _record(store, side, monkeypatch)
    (tmp_path / "same.py").write_text(V1)
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom\\nsecond line')\n")
    cases = {
        ("-m", str(tmp_path / "nope.py")): "no such file",
        ("-m", str(tmp_path / "raises.py")): "could not load definitions from",
        ("-m", "no_such_module_xyz"): "ModuleNotFoundError",
        ("-m", str(tmp_path / "same.py"), "--run", "nope"): "no run with workflow id 'nope'",
    }
    for args, expected in cases.items():
        result = cli("check", "chk-flow", *args, store=store, side=side)
        assert result.returncode == 1, (args, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("Error: ") and expected in line, (args, line)
    other = cli("check", "nope-flow", "-m", str(tmp_path / "same.py"), store=store, side=side)
    assert other.returncode == 1 and "no workflow named 'nope-flow'" in other.stderr
    usage = cli("check", "chk-flow", store=store, side=side)
    assert usage.returncode == 2 and "--module" in usage.stderr
