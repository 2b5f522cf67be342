"""The PostgreSQL backend beyond the store contract: connection errors, schema versions,
the lease across hosts, and real processes sharing runs (the throwaway server of
``tests/conftest.py``; helper processes are ``tests/pg_procs/pg_proc.py``)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from jsonlines_proc import JsonLinesProc
from store_contract.contract_helpers import event, new_run, start

import flovyn_nb as fn
from flovyn_nb.errors import InvalidInput, PromiseAlreadyResolved, StoreError
from flovyn_nb.model import PromiseStatus, RunStatus
from flovyn_nb.store import Change, NewPromise, SettlePromise, open_store
from flovyn_nb.testing import temporary_engine, wait_until

HERE = Path(__file__).resolve().parent
PROC = HERE / "pg_procs" / "pg_proc.py"
CLI = [sys.executable, "-m", "flovyn_nb.cli"]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from flovyn_nb.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


# -- connection strings and servers ---------------------------------------------------------


def test_an_unreachable_server_is_one_line_naming_host_and_port_never_the_password() -> None:
    with pytest.raises(StoreError) as caught:
        open_store("postgresql://alice:s3cret-pw@127.0.0.1:1/flovyn")
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "cannot reach the PostgreSQL server" in message
    assert "s3cret-pw" not in message and "\n" not in message


def test_a_bad_connection_string_is_one_clear_error() -> None:
    with pytest.raises(StoreError, match="bad PostgreSQL URL") as caught:
        open_store("postgresql://alice:pw@127.0.0.1:notaport/flovyn")
    assert "\n" not in str(caught.value) and ":pw@" not in str(caught.value)


def test_a_url_that_lost_a_slash_is_refused_and_creates_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match="lost a slash"):
        fn.start(store=str(Path("postgresql://u@h/db")))  # what Path() makes of a URL
    assert list(tmp_path.iterdir()) == []


def test_the_cli_reports_an_unreachable_server_in_one_line() -> None:
    done = _cli("runs", "--store", "postgresql://bob:hunter2@127.0.0.1:1/x")
    assert done.returncode == 1
    assert "127.0.0.1:1" in done.stderr and "hunter2" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_newer_schema_is_refused_with_one_clear_error(pg_url: str) -> None:
    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("INSERT INTO schema_version VALUES ('flovyn_nb', 99, now())")
    with pytest.raises(StoreError, match=r"newer flovyn_nb .*v99"):
        open_store(pg_url)


def test_the_schema_versions_match_the_duckdb_backend() -> None:
    from flovyn_nb.store.duckdb import schema as duck
    from flovyn_nb.store.postgres import schema as pg

    assert pg.CURRENT_VERSION == duck.CURRENT_VERSION
    assert sorted(pg.MIGRATIONS) == sorted(duck.MIGRATIONS)


def test_a_missing_store_without_create_says_so(pg_url: str) -> None:
    with pytest.raises(StoreError, match="no flovyn store at"):
        open_store(pg_url, create=False)


# -- ownership and settlement ----------------------------------------------------------------


def test_an_engine_on_another_host_is_dead_once_its_heartbeat_passes_the_lease(
    pg_url: str,
) -> None:
    store = open_store(pg_url, lease=1.0)
    try:
        run = start(store, "w-lease", owner="far-engine")
        store.register_engine(
            "far-engine", pid=1, host="far-host", proc_start=None, now=time.time()
        )
        taken = store.claim("me", ["k"], lambda engine: True)
        assert taken.runs == []  # a fresh heartbeat: alive, its run stays
        with psycopg.connect(pg_url, autocommit=True) as con:  # its heartbeat goes stale
            con.execute("UPDATE engines SET heartbeat_at = now() - interval '5 seconds'")
        taken = store.claim("me", ["k"], lambda engine: True)
        assert [row.id for row, _ in taken.runs] == [run.execution_id]
        assert "far-engine" not in {e.id for e in store.live_engines()}
    finally:
        store.close()


def test_concurrent_claimers_never_take_the_same_run(pg_url: str) -> None:
    stores = [open_store(pg_url) for _ in range(4)]
    try:
        for i in range(40):
            start(stores[0], f"w-claim-{i}")
        # Registered and alive: a run one of them claimed is not an orphan for the others
        # (an unregistered owner would be, and taken over as such).
        for i, store in enumerate(stores):
            store.register_engine(f"e{i}", pid=os.getpid(), host=socket.gethostname(),
                                  proc_start=None, now=time.time())  # fmt: skip
        taken: dict[str, list[str]] = {}
        barrier = threading.Barrier(len(stores))

        def claim(index: int) -> None:
            barrier.wait()
            got = stores[index].claim(f"e{index}", ["k"], lambda engine: True, limit=15)
            taken[f"e{index}"] = [row.id for row, _ in got.runs]

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        claimed = [run for runs in taken.values() for run in runs]
        assert len(claimed) == len(set(claimed)) == 40
    finally:
        for store in stores:
            store.close()


def test_claimers_of_different_kinds_keep_a_queues_concurrency_across_connections(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two engines serving different kinds of one queue (concurrency 2) claim at once. Each
    sees its own 2 oldest runs as allowed; without the claimers taking turns on the queue
    they would take 4. The take waits until the other claimer has picked too, or waits
    for the queue's lock: the race happens every time, not by chance."""
    from flovyn_nb.store.catalog import QueueRow
    from flovyn_nb.store.postgres import queues

    stores = [open_store(pg_url) for _ in range(2)]
    watcher = psycopg.connect(pg_url, autocommit=True)
    picked: list[str] = []
    real_take = queues.take

    def blocked_on_a_queue() -> bool:
        row = watcher.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ).fetchone()
        return row is not None and row[0] > 0

    def take(con: psycopg.Connection[tuple[object, ...]], *args: object, **kw: object) -> object:
        picked.append("picked")
        wait_until(lambda: len(picked) == 2 or blocked_on_a_queue(), timeout=30,
                   message="the other claimer neither picked nor waited for the queue")  # fmt: skip
        return real_take(con, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(queues, "take", take)
    try:
        stores[0].set_queue(QueueRow("q", concurrency=2), now=time.time())
        for n in range(6):
            run = replace(new_run(f"q-{n}", kind="ab"[n % 2]), queue="q")  # waiting in q
            stores[0].commit([Change(new_run=run, events=[event(run.execution_id, 1)])])
        taken: dict[str, list[str]] = {}

        def claim(index: int) -> None:
            got = stores[index].claim(f"e{index}", ["ab"[index]], lambda e: True, queues=["q"])
            taken[f"e{index}"] = [row.workflow_id for row, _ in got.runs]

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        claimed = [run for runs in taken.values() for run in runs]
        assert len(taken) == 2 and len(claimed) == len(set(claimed)) == 2, taken
    finally:
        watcher.close()
        for store in stores:
            store.close()


def test_racing_settlers_on_many_connections_leave_one_winner(pg_url: str) -> None:
    stores = [open_store(pg_url) for _ in range(6)]
    try:
        run = start(stores[0], "w-race")
        promise_id = f"{run.execution_id}:go"
        stores[0].commit(
            [Change(new_promise=NewPromise(promise_id, run.execution_id, "go", None, None, 0.0))]
        )
        outcomes: list[object] = []
        barrier = threading.Barrier(len(stores))

        def settle(index: int) -> None:
            request = SettlePromise(
                "w-race", "go", PromiseStatus.RESOLVED, index, None, f"s{index}", time.time
            )
            barrier.wait()
            try:
                outcomes.append(stores[index].settle_promise(request).value)
            except PromiseAlreadyResolved:
                outcomes.append("lost")

        threads = [threading.Thread(target=settle, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        winners = [o for o in outcomes if o != "lost"]
        assert len(winners) == 1 and len(outcomes) == len(stores)
        [stored] = stores[1].promises(workflow_id="w-race", pending_only=False)
        assert stored.value == winners[0]
    finally:
        for store in stores:
            store.close()


@fn.workflow(name="pg-wake")
async def _wake_me(ctx: fn.WorkflowContext) -> str:
    return str(await ctx.promise("go"))


def test_a_resolve_by_another_process_wakes_the_engine_without_waiting_for_its_look(
    pg_url: str,
) -> None:
    """The engine looks at its doorbell once an hour here: only the LISTEN thread waking
    it at the notification can bring the resolve (by another handle: another token, as
    another process) to the run within the deadline."""
    with temporary_engine(store=pg_url, poll_interval=3600.0):
        handle = fn.start_workflow(_wake_me, workflow_id="pg-wake-1")
        wait_until(lambda: fn.pending_promises("pg-wake-1"), timeout=30,
                   message="the promise was never created")  # fmt: skip
        other = open_store(pg_url)
        try:
            other.settle_promise(SettlePromise("pg-wake-1", "go", PromiseStatus.RESOLVED,
                                               "now", None, "other", time.time))  # fmt: skip
        finally:
            other.close()
        assert handle.result(timeout=30) == "now"


def test_sql_reads_postgresql_and_refuses_writes(pg_url: str) -> None:
    store = open_store(pg_url)
    try:
        start(store, "w-sql")
        frame = store.sql("SELECT workflow_id, version() LIKE 'PostgreSQL%' AS pg FROM "
                          "workflow_executions WHERE kind = ?", ["k"])  # fmt: skip
        assert list(frame["workflow_id"]) == ["w-sql"] and bool(frame["pg"][0])
        with pytest.raises(InvalidInput, match="read-only"):
            store.sql("DELETE FROM workflow_executions")
        with pytest.raises(InvalidInput, match="read-only"):
            store.sql("SELECT nextval('logs_id_seq')")
        with pytest.raises(InvalidInput):
            store.sql("SELECT 1; DELETE FROM workflow_executions")
        assert store.find_run("w-sql") is not None
        # --write: several statements in one committed transaction (% stays itself)
        store.sql(
            "UPDATE workflow_executions SET kind = 'k%'; "
            "UPDATE workflow_executions SET source_hash = 'h2'",
            write=True,
        )
        frame = store.sql("SELECT kind, source_hash FROM workflow_executions")
        assert frame.to_dict("records") == [{"kind": "k%", "source_hash": "h2"}]
    finally:
        store.close()


# -- processes -----------------------------------------------------------------------------


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[list[JsonLinesProc]]:
    started: list[JsonLinesProc] = []
    yield started
    for proc in started:
        proc.kill()


@pytest.mark.slow
def test_a_killed_engines_run_is_taken_over_and_resolved_from_the_cli_once(
    pg_url: str, tmp_path: Path, procs: list[JsonLinesProc]
) -> None:
    """kill -9 of the engine that owns a run; another process takes it over; two CLI
    resolves race (one wins, and wakes the run in the other process); no step repeats."""
    effects = tmp_path / "effects.txt"
    env = {**os.environ, "FLOVYN_PG_EFFECTS": str(effects)}
    wid = f"pg-{uuid.uuid4().hex[:8]}"

    def spawn(*args: str) -> JsonLinesProc:
        log = tmp_path / f"proc-{len(procs)}.log"
        proc = JsonLinesProc(PROC, [pg_url, *args], cwd=tmp_path, log=log, env=env, stdin=True,
                             startup=60)  # fmt: skip
        procs.append(proc)
        return proc

    owner = spawn(wid)
    owner.expect("waiting", timeout=60)
    owner.popen.kill()  # SIGKILL: no goodbye, its engine row still says it runs
    owner.popen.wait(30)
    heir = spawn()
    heir.expect("ready", timeout=60)

    resolves = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from flovyn_nb.cli import main; main()",
                "resolve",
                wid,
                "go",
                "--value",
                json.dumps(n),
                "--store",
                pg_url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for n in (1, 2)
    ]
    results = [(p.wait(120), p.communicate()) for p in resolves]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser_err = next(err for code, (_, err) in results if code == 1)
    assert "already resolved" in loser_err

    store = open_store(pg_url)
    try:

        def done() -> bool:
            run = store.get_run(wid, with_events=False)
            return run is not None and run.status is RunStatus.COMPLETED

        wait_until(done, timeout=60, message="the heir never completed the run")
        run = store.get_run(wid, with_events=False)
        assert run is not None and run.output["value"] in (1, 2)
    finally:
        store.close()
    lines = effects.read_text().split()
    keys = lines[0::2]
    assert sorted(keys) == [f"{wid}-a", f"{wid}-b"], lines  # each step exactly once
    pids = dict(zip(keys, lines[1::2], strict=True))
    assert pids[f"{wid}-a"] == str(owner.pid) and pids[f"{wid}-b"] == str(heir.pid)


# -- moving up -------------------------------------------------------------------------------


@fn.workflow(name="pg-migrated")
async def migrated(ctx: fn.WorkflowContext, n: int) -> int:
    doubled: int = await ctx.run("double", lambda: n * 2)
    return doubled


def test_migrate_copies_a_duckdb_history_into_postgresql_once_and_verifies(
    pg_url: str, tmp_path: Path
) -> None:
    duck = tmp_path / "flovyn.duckdb"
    with fn.start(store=duck):
        handles = [fn.start_workflow(migrated, n, workflow_id=f"m-{n}") for n in range(3)]
        assert [h.result(timeout=60) for h in handles] == [0, 2, 4]
        waiting = fn.start_workflow(two_steps_like, None, workflow_id="m-wait")
        wait_until(lambda: fn.pending_promises("m-wait"), timeout=60)
        fn.resolve_promise("m-wait", "never", 1, allow_early=True)  # a promise row
        del waiting
    done = _cli("migrate", "--from", str(duck), "--to", pg_url)
    assert done.returncode == 0, done.stderr
    assert "workflow_executions: 4 copied" in done.stdout and "verified" in done.stdout
    store = open_store(pg_url)
    try:
        run = store.get_run("m-2")
        assert run is not None and run.status is RunStatus.COMPLETED and run.output == 4
        assert len(run.events) >= 3
        assert store.find_run("m-wait") is not None and store.find_run("m-wait").owner is None
    finally:
        store.close()
    again = _cli("migrate", "--from", str(duck), "--to", pg_url)
    assert again.returncode == 0, again.stderr
    assert all(" 0 copied" in line for line in again.stdout.splitlines() if "copied" in line)
    gone = _cli("migrate", "--from", str(duck), "--to", "postgresql://u:pw@127.0.0.1:1/x")
    assert gone.returncode == 1 and "127.0.0.1:1" in gone.stderr and ":pw" not in gone.stderr
    with psycopg.connect(pg_url, autocommit=True) as con:
        con.execute("INSERT INTO schema_version VALUES ('flovyn_nb', 99, now())")
    newer = _cli("migrate", "--from", str(duck), "--to", pg_url)
    assert newer.returncode == 1 and "newer flovyn_nb" in newer.stderr


@fn.workflow(name="pg-waits")
async def two_steps_like(ctx: fn.WorkflowContext) -> object:
    return await ctx.promise("go")


def test_an_engine_on_a_url_shows_its_runs_in_panels_and_the_cli(pg_url: str) -> None:
    """fn.start(store="postgresql://…"): runs, the panel's text form, the CLI's --store."""
    from flovyn_nb.widgets import handle_mimebundle

    with fn.start(store=pg_url) as runtime:
        assert runtime.store_location == pg_url
        handle = fn.start_workflow(migrated, 21, workflow_id="panel-run")
        assert handle.result(timeout=60) == 42
        text = handle_mimebundle(handle)["text/plain"]
        assert "panel-run" in text and "no panel" not in text, text
        frame = fn.sql(
            "SELECT count(*) AS n FROM events e JOIN workflow_executions r "
            "ON r.id = e.execution_id WHERE r.workflow_id = ? AND e.type = 'WORKFLOW_COMPLETED'",
            ["panel-run"],
        )
        assert int(frame["n"][0]) == 1
    shown = _cli("show", "panel-run", "--store", pg_url)
    assert shown.returncode == 0 and "COMPLETED" in shown.stdout, shown.stderr
    env = {**os.environ, "FLOVYN_NB_STORE": pg_url}
    listed = _cli("runs", "--json", env=env)
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["workflow_id"] == "panel-run"
