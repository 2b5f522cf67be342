"""``flovyn-nb start``, ``show``'s queue line, ``schedules`` and ``worker``'s errors, run as
real commands against a store an engine of this process serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.testing import FakeClock, temporary_engine

PROCS = Path(__file__).parent / "worker_procs"


@fn.workflow(name="cq-echo")
async def echo(ctx: fn.WorkflowContext, n: int) -> int:
    return n


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flovyn_nb.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FLOVYN_NB_LOCK_TIMEOUT": "60"},
        check=False,
    )


def test_start_runs_on_a_served_queue_and_show_names_the_queue(store_path: Path) -> None:
    with temporary_engine(store=store_path):
        done = cli("start", "cq-echo", "--input", "5", "--id", "e1", "--store", str(store_path))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "started e1 (cq-echo) on queue 'default'"
        assert fn.get_handle("e1").result(timeout=60) == 5
        parked = cli("start", "cq-echo", "--input", "1", "--id", "e2", "--queue", "nobody",
                     "--store", str(store_path), "--json")  # fmt: skip
        assert json.loads(parked.stdout)["queue_served_by"] == []
        assert "no live engine serves queue 'nobody'" in parked.stderr
        shown = cli("show", "e2", "--store", str(store_path))
        assert (
            "queue:  nobody (waiting in queue 'nobody' — no engine serves it (workflow "
            "'cq-echo' is loaded on queue 'default' only)" in shown.stdout
        )
        data = json.loads(cli("show", "e2", "--json", "--store", str(store_path)).stdout)
        assert (data["queue"], data["waiting_in_queue"]) == ("nobody", True)
        bad = cli("start", "cq-echo", "--input", '"x"', "--store", str(store_path))
        assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
        assert bad.stderr.startswith("Error: ") and "cq-echo" in bad.stderr
        assert fn.get_run("e2", events=False).queue == "nobody"


def test_schedules_list_pause_resume_delete(store_path: Path) -> None:
    with temporary_engine(store=store_path, clock=FakeClock(autojump=False)):
        fn.schedule(echo, cron="0 6 * * *", input=1, name="morning")
        path = str(store_path)
        listed = json.loads(cli("schedules", "list", "--json", "--store", path).stdout)
        [row] = [s for s in listed if s["name"] == "morning"]
        assert (row["workflow"], row["cron"], row["paused"]) == ("cq-echo", "0 6 * * *", False)
        assert row["next_fire"] == "2030-01-01T06:00:00+00:00"
        assert cli("schedules", "pause", "morning", "--store", path).returncode == 0
        assert "paused" in cli("schedules", "--store", path).stdout
        assert cli("schedules", "resume", "morning", "--store", path).returncode == 0
        assert not next(s for s in client.list_schedules() if s.name == "morning").paused
        assert cli("schedules", "delete", "morning", "--store", path).returncode == 0
        gone = cli("schedules", "delete", "morning", "--store", path)
        assert gone.returncode == 1
        assert gone.stderr == "Error: no schedule named 'morning'; see `flovyn-nb schedules list`\n"


def test_worker_refuses_what_it_cannot_serve_in_one_line(tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    missing = cli("worker", "no_such_module_here", "--store", store)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: no module named 'no_such_module_here'")
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    nothing = cli("worker", str(empty), "--store", store)
    assert "defines no @workflow: nothing to serve" in nothing.stderr
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    failed = cli("worker", str(broken), "--store", store)
    assert failed.returncode == 1 and failed.stderr.count("\n") == 1
    assert "loading" in failed.stderr and "RuntimeError: boom" in failed.stderr
