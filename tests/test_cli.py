"""The flovyn-nb command: real processes on a real store file."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

import flovyn_nb as fn
from flovyn_nb.testing import wait_until

CLI = [sys.executable, "-m", "flovyn_nb.cli"]

WORKER = textwrap.dedent(
    """
    import sys, pydantic
    import flovyn_nb as fn

    class Decision(pydantic.BaseModel):
        approved: bool

    @fn.workflow(name="cli-approval")
    async def approval(ctx: fn.WorkflowContext) -> str:
        ctx.logger.info("asking")
        decision = await ctx.promise("approval", type_hint=Decision)
        return f"approved={decision.approved}"

    with fn.start(sys.argv[1]):
        h = fn.start_workflow(approval, workflow_id="order-1")
        print("RESULT", h.result(timeout=60), flush=True)
    """
)


def cli(*args: str, store: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--store", str(store)] if store is not None else []
    return subprocess.run(
        [*CLI, *args, *extra], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def waiting_run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A separate Python process whose workflow waits on a typed promise."""
    store = tmp_path / "shared.duckdb"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)], stdout=subprocess.PIPE, text=True
    )
    try:
        wait_until(lambda: store.exists() and fn.pending_promises(store=store), timeout=30)
        yield store, proc
    finally:
        proc.kill()
        proc.communicate()


def _state(store: Path) -> str:
    rows = fn.sql("select * from promises order by id", store=store).to_json(date_format="iso")
    events = fn.sql(
        "select execution_id, seq, type from events order by 1, 2", store=store
    ).to_json()
    return hashlib.sha256((rows + events).encode()).hexdigest()


def test_resolve_from_the_cli_wakes_the_other_process(
    waiting_run: tuple[Path, subprocess.Popen[str]],
) -> None:
    store, proc = waiting_run
    listed = json.loads(cli("promises", "--json", store=store).stdout)
    assert [(p["workflow_id"], p["name"]) for p in listed] == [("order-1", "approval")]
    assert listed[0]["schema"]["title"] == "Decision"
    assert listed[0]["resolve_command"].startswith("flovyn-nb resolve order-1 approval")

    done = cli("resolve", "order-1", "approval", "--value", '{"approved": true}', store=store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "resolved order-1/approval"
    out, _ = proc.communicate(timeout=30)
    assert "RESULT approved=True" in out

    again = cli("resolve", "order-1", "approval", "--value", '{"approved": false}', store=store)
    assert again.returncode == 1
    assert again.stderr.strip().startswith(
        "Error: promise 'approval' of run 'order-1' is already resolved"
    )

    runs = json.loads(cli("runs", "--json", store=store).stdout)
    assert [(r["workflow_id"], r["status"], r["output"]) for r in runs] == [
        ("order-1", "COMPLETED", "approved=True")
    ]
    shown = json.loads(cli("show", "order-1", "--json", store=store).stdout)
    assert [e["type"] for e in shown["events"]][-2:] == ["PROMISE_RESOLVED", "WORKFLOW_COMPLETED"]
    assert shown["events"][-2]["payload"]["resolvedBy"].startswith("cli")
    logs = cli("logs", "order-1", store=store)
    assert "asking" in logs.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("resolve", "nope", "approval", "--value", "true"), "no run with workflow id 'nope'"),
        (
            ("resolve", "order-1", "approvl", "--value", "true"),
            "run 'order-1' has no promise named 'approvl'",
        ),
        (
            ("resolve", "order-1", "approval", "--value", "{approved: true}"),
            "--value is not valid JSON",
        ),
        (
            ("resolve", "order-1", "approval", "--value", '{"approved": "maybe"}'),
            "is not a valid Decision",
        ),
        (("reject", "order-1", "approvl", "--reason", "no"), "has no promise named 'approvl'"),
        (("signal", "nope", "note", "--value", "1"), "no run with workflow id 'nope'"),
        (("cancel", "nope"), "no run with workflow id 'nope'"),
        (("show", "nope"), "no run with workflow id 'nope'"),
        (("sql", "select * from nowhere"), "bad SQL"),
    ],
)
def test_bad_requests_fail_with_one_line_and_change_nothing(
    waiting_run: tuple[Path, subprocess.Popen[str]], args: tuple[str, ...], message: str
) -> None:
    store, _ = waiting_run
    before = _state(store)
    result = cli(*args, store=store)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr
    assert _state(store) == before


def test_store_problems_are_one_line(tmp_path: Path) -> None:
    missing = cli("runs", store=tmp_path / "missing.duckdb")
    assert missing.returncode == 1 and "no flovyn store at" in missing.stderr

    foreign = tmp_path / "foreign.duckdb"
    con = duckdb.connect(str(foreign))
    con.execute("create table sales(id int)")
    con.close()
    digest = hashlib.sha256(foreign.read_bytes()).hexdigest()
    result = cli("runs", store=foreign)
    assert result.returncode == 1 and "not a flovyn store" in result.stderr
    assert hashlib.sha256(foreign.read_bytes()).hexdigest() == digest

    text = tmp_path / "notes.duckdb"
    text.write_text("hello")
    result = cli("runs", store=text)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot open the store" in result.stderr
    assert text.read_text() == "hello"


def test_locked_store_names_the_holder(tmp_path: Path) -> None:
    store = tmp_path / "held.duckdb"
    fn.start(store)
    fn.stop()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(store)!r}); print('held', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = dict(os.environ, FLOVYN_NB_LOCK_TIMEOUT="0.5")
        result = subprocess.run(
            [*CLI, "runs", "--store", str(store)],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert result.returncode == 1
        assert f"PID {holder.pid}" in result.stderr
        assert "Traceback" not in result.stderr
    finally:
        holder.kill()
        holder.communicate()


# What a read command must not load (each costs a large part of the start-up budget).
HEAVY_FOR_THE_CLI = ("pandas", "numpy", "pyarrow", "IPython", "ipywidgets", "jsonschema")


def test_read_commands_load_no_heavy_module(tmp_path: Path) -> None:
    """What keeps ``flovyn-nb runs`` quick: it answers without loading the notebook-side
    modules. Its start time (0.5 s on an idle machine) is a figure of ``make bench``
    (import_time, cli_runs_ms), not asserted here."""
    store = tmp_path / "quick.duckdb"
    fn.start(store)
    fn.stop()
    code = (
        "import atexit, json, sys\n"
        f"heavy = {HEAVY_FOR_THE_CLI!r}\n"
        "atexit.register(lambda: print('HEAVY ' + json.dumps("
        "[m for m in heavy if m in sys.modules]), file=sys.stderr))\n"
        f"sys.argv = ['flovyn-nb', 'runs', '--json', '--store', {str(store)!r}]\n"
        "from flovyn_nb.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []
    [line] = [x for x in done.stderr.splitlines() if x.startswith("HEAVY ")]
    assert json.loads(line.removeprefix("HEAVY ")) == [], line
