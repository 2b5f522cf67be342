"""The store layer with real files and real processes (ARCHITECTURE.md §3 and §5).

Other processes are ``tests/store_procs/proc.py`` (raw holder, writer, engine); they are
killed in teardown whatever happens.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import signal
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from engine_internals import running_engine
from jsonlines_proc import JsonLinesProc

import flovyn_nb as fn
from flovyn_nb.errors import (
    InvalidInput,
    PromiseAlreadyResolved,
    StoreError,
    StoreLocked,
)
from flovyn_nb.model import RunStatus
from flovyn_nb.store import EventRow, LogRow, NewRun, RunUpdate, location_of, open_store
from flovyn_nb.store.duckdb import DuckDBStore, ops, schema
from flovyn_nb.testing import temporary_engine, wait_until

PROC = Path(__file__).parent / "store_procs" / "proc.py"

pytestmark = pytest.mark.slow


# -- helpers -----------------------------------------------------------------------------


class Proc(JsonLinesProc):
    """A store helper process (its environment has no FLOVYN_NB_STORE)."""

    def __init__(self, args: list[str], cwd: Path, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k != "FLOVYN_NB_STORE"}
        super().__init__(PROC, args, cwd=cwd, log=log, env=env)


Spawn = Callable[..., Proc]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    procs: list[Proc] = []

    def start(*args: str) -> Proc:
        proc = Proc(list(args), tmp_path, tmp_path / f"proc-{len(procs)}.log")
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def make_store(path: Path) -> None:
    store = DuckDBStore(path)
    store.read(lambda con: con.execute("SELECT 1").fetchall())
    store.close()


def count(path: Path, query: str, params: list[Any] | None = None, **options: Any) -> int:
    store = DuckDBStore(path, create=False, **options)
    try:
        return store.read(lambda con: con.execute(query, params or []).fetchone()[0])
    finally:
        store.close()


def run_of(path: Path, workflow_id: str) -> fn.RunInfo:
    return fn.get_run(workflow_id, store=path)


def wait_status(path: Path, workflow_id: str, status: str, timeout: float = 15.0) -> fn.RunInfo:
    return wait_until(
        lambda: (
            (run := fn.get_run(workflow_id, events=False, store=path)).status.value == status
            and run
        ),
        timeout=timeout,
        interval=0.02,
        message=f"run {workflow_id} did not reach {status}",
    )


def promises_table(path: Path) -> list[tuple[Any, ...]]:
    frame = fn.sql("SELECT * FROM promises ORDER BY id", store=path)
    return [tuple(row) for row in frame.astype(str).itertuples(index=False)]


def engine_row(path: Path, engine_id: str) -> dict[str, Any]:
    frame = fn.sql(
        "SELECT pid, stopped, epoch(started_at) AS started, epoch(heartbeat_at) AS beat "
        "FROM engines WHERE id = ?",
        [engine_id],
        store=path,
    )
    assert len(frame) == 1, frame
    return frame.iloc[0].to_dict()


def start_waiting_engine(
    spawn: Spawn, path: Path, workflow: str, workflow_id: str, *extra: str
) -> tuple[Proc, str]:
    """An engine process with a run of ``workflow`` that is WAITING on a promise."""
    args = ["engine", str(path), "--workflow", workflow, "--workflow-id", workflow_id]
    if workflow == "store-test-approval":
        args += ["--input", json.dumps(f"order of {workflow_id}")]
    proc = spawn(*args, "--wait-status", "WAITING", *extra)
    engine_id = proc.expect("started")["engine_id"]
    proc.expect("status")
    return proc, engine_id


# -- 1. schema -------------------------------------------------------------------------


def test_fresh_store_gets_the_current_schema(store_path: Path) -> None:
    store = DuckDBStore(store_path)
    rows = store.read(lambda con: con.execute("SELECT app, version FROM schema_version").fetchall())
    versions = [("flovyn_nb", v) for v in range(1, schema.CURRENT_VERSION + 1)]
    assert sorted(rows) == versions
    store.close()
    # Reopening does not migrate again, and the version is in the file itself.
    make_store(store_path)
    con = duckdb.connect(str(store_path), read_only=True)
    try:
        assert sorted(con.execute("SELECT app, version FROM schema_version").fetchall()) == versions
    finally:
        con.close()


def test_a_version_1_store_is_migrated_and_keeps_its_data(store_path: Path) -> None:
    con = duckdb.connect(str(store_path))
    for statement in schema.MIGRATIONS[1]:
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES ('flovyn_nb', 1, now()::TIMESTAMP)")
    con.execute(
        "INSERT INTO promises (id, execution_id, name, status, created_at) "
        "VALUES ('e:go', 'e', 'go', 'PENDING', now()::TIMESTAMP)"
    )
    con.close()
    store = DuckDBStore(store_path)
    try:

        def look(c: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
            version = c.execute("SELECT max(version) FROM schema_version").fetchone()
            indexes = c.execute("SELECT index_name FROM duckdb_indexes()").fetchall()
            promise = c.execute("SELECT id, status FROM promises").fetchall()
            return version, indexes, promise

        version, indexes, promise = store.read(look)
    finally:
        store.close()
    assert version == (schema.CURRENT_VERSION,)
    assert ("promises_status",) not in indexes
    assert promise == [("e:go", "PENDING")]


def _assert_refused(path: Path, *words: str) -> StoreError:
    before = sha256(path)
    assert not sidecar(path, ".wal").exists()
    store = DuckDBStore(path)
    with pytest.raises(StoreError) as info:
        store.read(lambda con: con.execute("SELECT 1").fetchall())
    assert not isinstance(info.value, StoreLocked)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert str(path) in message
    assert not store.lease.is_open
    store.close()
    assert sha256(path) == before, "a refused file was modified"
    assert not sidecar(path, ".wal").exists(), "a refused file got a WAL"
    return info.value


def test_newer_schema_is_refused_and_untouched(store_path: Path) -> None:
    make_store(store_path)
    con = duckdb.connect(str(store_path))
    newer = schema.CURRENT_VERSION + 1
    con.execute(f"INSERT INTO schema_version VALUES ('flovyn_nb', {newer}, now()::TIMESTAMP)")
    con.close()
    error = _assert_refused(store_path, "newer flovyn_nb", "upgrade")
    assert error.path == str(store_path)
    # An engine refuses it the same way and does not stay half-started.
    before = sha256(store_path)
    with pytest.raises(StoreError, match="newer flovyn_nb"):
        fn.start(store=store_path)
    assert fn.current_engine() is None
    assert sha256(store_path) == before
    assert not sidecar(store_path, ".wal").exists()


def test_foreign_duckdb_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "analytics.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE sales (id INTEGER, amount DOUBLE)")
    con.execute("INSERT INTO sales VALUES (1, 9.5), (2, 3.25)")
    con.close()
    _assert_refused(path, "not a flovyn store")
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    finally:
        con.close()
    assert tables == [("sales",)]


def test_file_that_is_not_duckdb_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    _assert_refused(path)
    # Through the public API too: a StoreError, not a duckdb exception.
    with pytest.raises(StoreError):
        fn.list_runs(store=path)
    assert path.read_bytes() == b"these are my notes, not a database\n" * 200


def test_missing_store_without_create_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "flovyn.duckdb"
    with pytest.raises(StoreError) as info:
        DuckDBStore(path, create=False)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)
    with pytest.raises(StoreError) as info:
        fn.get_run("anything", store=path)
    assert str(path) in str(info.value)
    assert not path.parent.exists()


def test_store_that_cannot_be_created_gives_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the store's folder should be")
    path = blocker / "flovyn.duckdb"
    with pytest.raises(StoreError) as info:
        fn.start(store=path)
    assert str(path) in str(info.value) or str(blocker) in str(info.value)
    assert fn.current_engine() is None
    assert blocker.read_text() == "a file where the store's folder should be"


# -- 2. lock conflicts ---------------------------------------------------------------------


def test_raw_holder_gives_store_locked_naming_its_pid(store_path: Path, spawn: Spawn) -> None:
    make_store(store_path)
    holder = spawn("hold", str(store_path))
    holder.expect("ready")
    store = DuckDBStore(store_path, lock_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(StoreLocked) as info:
        store.read(lambda con: con.execute("SELECT count(*) FROM workflow_executions").fetchone())
    elapsed = time.monotonic() - started
    print(f"StoreLocked after {elapsed * 1000:.0f} ms (lock_timeout 500 ms)")
    # It waits its lock timeout out, never less, and then gives up (the holder never lets
    # go); how soon after the timeout it gives up is not a property (a loaded machine).
    assert 0.5 <= elapsed < 30
    assert info.value.holder_pid == holder.pid
    assert f"PID {holder.pid}" in str(info.value)
    assert info.value.path == str(store_path)
    assert not sidecar(store_path, ".knock").exists(), "the knock file was left behind"
    # Writes meet the same answer.
    with pytest.raises(StoreLocked):
        store.transaction(lambda con: None)
    store.close()


def test_store_locked_names_the_plain_duckdb_client_not_a_flovyn_process_waiting_too(
    store_path: Path, spawn: Spawn
) -> None:
    """Issue 12.7: flovyn processes waiting for the same holder take turns at the turn lock;
    a waiter that finds the turn taken must still name the DuckDB client, not them."""
    make_store(store_path)
    holder = spawn("hold", str(store_path))
    holder.expect("ready")
    waiters = [spawn("writer", str(store_path)) for _ in range(3)]
    wait_until(
        lambda: sidecar(store_path, ".knock").exists(),
        timeout=60,
        message="the flovyn writers never started waiting",
    )
    named = []
    for _ in range(6):
        store = DuckDBStore(store_path, lock_timeout=0.25)
        with pytest.raises(StoreLocked) as info:
            store.transaction(lambda con: None)
        store.close()
        named.append(info.value.holder_pid)
        assert f"PID {info.value.holder_pid}" in str(info.value)
    assert named == [holder.pid] * 6, (
        f"holder {holder.pid}, waiters {[w.pid for w in waiters]}, this process {os.getpid()}"
    )


_effects: list[str] = []


@fn.task(name="store-locked-effect")
def _effect(name: str) -> str:
    _effects.append(name)
    return name


@fn.workflow(name="store-locked-steps")
async def _steps_around_a_timer(ctx: fn.WorkflowContext, pause: float) -> list[str]:
    done = [await ctx.schedule(_effect, "before")]
    await ctx.sleep(pause)
    done.append(await ctx.schedule(_effect, "after"))
    done.append(await ctx.schedule(_effect, "last"))
    return done


def test_a_store_held_by_a_foreign_client_delays_the_record_and_loses_none_of_it(
    store_path: Path, spawn: Spawn
) -> None:
    """A plain DuckDB client that never lets go: a run's record waits for the store (and
    the run waits before its next side effect) instead of being dropped; callers get
    StoreLocked and change nothing; when the client goes, the run carries on, no hole."""
    _effects.clear()
    with temporary_engine(store=store_path, lock_timeout=0.3, idle_release=0.05) as engine:
        # The holder must be in before the timer fires: its pause leaves a loaded
        # machine time to start the holder's interpreter.
        handle = fn.start_workflow(_steps_around_a_timer, 6.0, workflow_id="locked-1")
        wait_until(lambda: fn.get_run("locked-1").status is RunStatus.WAITING)
        assert _effects == ["before"]
        holder = spawn("hold", str(store_path), "--wait", "20")
        holder.expect("ready")

        # The timer fires; the record of it and of the next step cannot be written.
        blocked = wait_until(lambda: engine.store_blocked, timeout=30, message="never blocked")
        assert blocked.holder_pid == holder.pid
        assert _effects == ["before"], "a side effect ran before its record was durable"
        with pytest.raises(StoreLocked, match=f"PID {holder.pid}"):
            fn.start_workflow(_steps_around_a_timer, 0.0, workflow_id="locked-2")
        with pytest.raises(StoreLocked):
            fn.list_runs()
        assert _effects == ["before"]  # still, a few lock timeouts later

        holder.kill()
        assert handle.result(timeout=30) == ["before", "after", "last"]
        assert engine.store_blocked is None
        run = fn.get_run("locked-1")
        assert [event.seq for event in run.events] == list(range(1, len(run.events) + 1))
        types = [event.type for event in run.events]
        assert types.count("TIMER_FIRED") == 1
        assert types.count("TASK_COMPLETED") == 3
        assert _effects == ["before", "after", "last"]
        assert [r.workflow_id for r in fn.list_runs()] == ["locked-1"]
        assert sum("waiting for the store" in text for text in engine.errors) == 1


def test_stopping_while_a_foreign_client_holds_the_store_is_like_a_crash(
    store_path: Path, spawn: Spawn
) -> None:
    """stop() does not wait for the holder forever; it says what stayed unwritten, and the
    next engine resumes the run from what was durable (no step runs twice)."""
    _effects.clear()
    with temporary_engine(store=store_path, lock_timeout=0.3, idle_release=0.05) as engine:
        # The holder must be in before the timer fires (a loaded machine starts it slowly).
        fn.start_workflow(_steps_around_a_timer, 6.0, workflow_id="locked-stop")
        wait_until(lambda: fn.get_run("locked-stop").status is RunStatus.WAITING)
        holder = spawn("hold", str(store_path), "--wait", "20")
        holder.expect("ready")
        wait_until(lambda: engine.store_blocked, timeout=30, message="never blocked")
        started = time.monotonic()
    stopping = time.monotonic() - started
    # The holder never lets go: stop() returning at all is the property (generous bound).
    assert stopping < 30, f"stop() took {stopping:.1f} s"
    assert any("unwritten" in text for text in engine.errors), engine.errors
    holder.kill()
    with temporary_engine(store=store_path):
        wait_until(lambda: fn.get_run("locked-stop").status is RunStatus.COMPLETED, timeout=20)
        assert fn.get_run("locked-stop").output == ["before", "after", "last"]
    assert _effects == ["before", "after", "last"]


def test_a_call_blocked_when_the_engine_stops_fails_instead_of_hanging(
    store_path: Path, spawn: Spawn
) -> None:
    """A start waits for the store (a foreign client holds it); stop() from another thread
    ends the wait with an EngineError that says so, not a hang or a bare cancellation."""
    with temporary_engine(store=store_path, lock_timeout=30.0) as engine:
        fn.start_workflow(_steps_around_a_timer, 0.5, workflow_id="warm")  # store created
        holder = spawn("hold", str(store_path), "--wait", "20")
        holder.expect("ready")
        outcome: list[BaseException | str] = []

        def start() -> None:
            try:
                fn.start_workflow(_steps_around_a_timer, 0.5, workflow_id="blocked")
                outcome.append("started")
            except BaseException as exc:
                outcome.append(exc)

        caller = threading.Thread(target=start)
        caller.start()
        writer = running_engine().writer  # the writer's queue: an internal mechanism
        wait_until(lambda: writer.unwritten > 0, message="the start never queued")
        engine.stop()
        caller.join(timeout=10)
        assert not caller.is_alive(), "the caller still waits after stop()"
    holder.kill()
    [error] = outcome
    assert isinstance(error, fn.EngineError), repr(error)
    assert "stopped" in str(error)


# -- 3. idle release -----------------------------------------------------------------------


def _try_connect(path: Path) -> duckdb.DuckDBPyConnection | None:
    try:
        return duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise
        return None


def test_idle_engine_releases_the_file(store_path: Path, spawn: Spawn) -> None:
    proc = spawn(
        "engine",
        str(store_path),
        *("--workflow", "store-test-busy", "--workflow-id", "idle-1", "--input", "3"),
        *("--wait-status", "COMPLETED"),
    )
    proc.expect("status")
    started = time.monotonic()
    con = wait_until(lambda: _try_connect(store_path), timeout=30, interval=0.005)
    elapsed = time.monotonic() - started
    try:
        row = con.execute(
            "SELECT status, output FROM workflow_executions WHERE workflow_id = 'idle-1'"
        ).fetchone()
    finally:
        con.close()
    print(f"raw connect got in {elapsed * 1000:.0f} ms after the engine went idle")
    assert row == ("COMPLETED", "3")
    assert proc.popen.poll() is None, "the engine process died"


def test_a_process_that_only_queried_releases_the_file(store_path: Path, spawn: Spawn) -> None:
    make_store(store_path)
    assert fn.list_runs(store=store_path) == []  # the client's own, cached Store
    # The holder gives up (and reports no "ready") if the file is not let go within 30 s.
    holder = spawn("hold", str(store_path), "--wait", "30")
    waited = holder.expect("ready", timeout=60)["waited"]
    print(f"raw connect from another process waited {waited * 1000:.0f} ms")


# -- 4. knock hand-over --------------------------------------------------------------------


def _hand_over(
    path: Path, query: str, trials: int, lock_timeout: float = 10
) -> tuple[list[float], list[int]]:
    times, counts = [], []
    for _ in range(trials):
        store = DuckDBStore(path, create=False, lock_timeout=lock_timeout)
        started = time.monotonic()
        counts.append(store.read(lambda con: con.execute(query).fetchone()[0]))
        times.append(time.monotonic() - started)
        store.close()
    return times, counts


def _report(label: str, times: list[float]) -> None:
    print(
        f"{label}: hand-over median {statistics.median(times) * 1000:.1f} ms, "
        f"max {max(times) * 1000:.1f} ms over {len(times)} trials"
    )


def test_knock_hands_over_from_a_busy_writer(store_path: Path, spawn: Spawn) -> None:
    make_store(store_path)
    writer = spawn("writer", str(store_path))
    writer.expect("ready")
    query = "SELECT count(*) FROM logs WHERE execution_id = 'writer'"
    # The writer never idles: without the knock each open fails with StoreLocked after
    # its lock timeout (10 s). How fast the hand-over is: bench's lock_handover figure.
    times, counts = _hand_over(store_path, query, trials=10)
    _report("busy Store.transaction writer", times)
    assert len(times) == 10
    assert counts[0] >= 1
    # The holder kept writing between and after the hand-overs.
    assert counts[-1] > counts[0]
    last = counts[-1]
    wait_until(lambda: count(store_path, query) > last + 10, timeout=30, interval=0.05)
    assert writer.popen.poll() is None


def test_knock_hands_over_from_a_busy_engine(store_path: Path, spawn: Spawn) -> None:
    engine = spawn(
        "engine",
        str(store_path),
        *("--workflow", "store-test-busy", "--workflow-id", "busy-1", "--input", "100000"),
    )
    engine.expect("run")
    query = "SELECT count(*) FROM events WHERE type = 'TASK_COMPLETED'"
    wait_until(lambda: count(store_path, query) >= 3, timeout=30, interval=0.05)
    # The engine never goes idle: each read gets in only because the knock made the engine
    # let go (else StoreLocked after the lock timeout). How fast is a figure, not a test.
    times, counts = _hand_over(store_path, query, trials=10, lock_timeout=30)
    _report("busy engine", times)
    assert len(times) == 10
    last = counts[-1]
    wait_until(lambda: count(store_path, query) > last + 3, timeout=30, interval=0.05)
    assert engine.popen.poll() is None


def test_knock_reaches_a_holder_that_named_the_store_through_a_symlink(
    tmp_path: Path, spawn: Spawn
) -> None:
    real = tmp_path / "data" / "flovyn.duckdb"
    make_store(real)
    link = tmp_path / "flovyn.duckdb"
    link.symlink_to(real)
    writer = spawn("writer", str(link))
    writer.expect("ready")
    # Unheard, the knock leaves the writer holding on: StoreLocked after the lock timeout.
    times, _ = _hand_over(real, "SELECT count(*) FROM logs", trials=1, lock_timeout=15)
    _report("writer on a symlink, reader on the real path", times)
    assert len(times) == 1


# -- 5. doorbell ---------------------------------------------------------------------------


def test_transaction_rings_the_bell(store_path: Path) -> None:
    store = DuckDBStore(store_path)
    bell = sidecar(store_path, ".bell")

    def stamp() -> tuple[int, int]:
        # What a watcher's cheap stat sees; the bell may move its mtime or its size.
        if not bell.exists():
            return (0, 0)
        info = bell.stat()
        return (info.st_mtime_ns, info.st_size)

    def insert(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(
            "INSERT INTO logs VALUES ('bell', NULL, now()::TIMESTAMP, 'stdout', 'INFO', 'x')"
        )

    stamps = [stamp()]
    for _ in range(5):
        store.transaction(insert)
        stamps.append(stamp())
    assert all(b[0] > a[0] or b[1] != a[1] for a, b in itertools.pairwise(stamps)), stamps
    # Reads and failed transactions do not ring (watchers would wake for nothing).
    store.read(lambda con: con.execute("SELECT count(*) FROM logs").fetchone())

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        insert(con)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.transaction(broken)
    assert stamp() == stamps[-1]
    assert store.read(lambda con: con.execute("SELECT count(*) FROM logs").fetchone()) == (5,)
    store.close()


def test_only_a_registration_tells_watchers_that_an_engine_may_have_joined(
    store_path: Path,
) -> None:
    """Engines refresh their peers (a read, which takes the file from its holder) only
    when an engine registered, not on every commit of a busy neighbour."""
    here = DuckDBStore(store_path)
    here.read(lambda con: None)  # the store exists (created by this handle)
    watcher = here.doorbell.watcher()
    # Another process's handle: a bell of its own (its rings are not this one's).
    elsewhere = DuckDBStore(store_path, create=False)
    try:
        for _ in range(3):
            elsewhere.transaction(lambda con: con.execute("SELECT 1"))
        assert watcher.rung_by_others()
        assert not watcher.engines_may_have_joined()
        elsewhere.register_engine("e-1", pid=os.getpid(), host="h", proc_start=None, now=0.0)
        elsewhere.transaction(lambda con: con.execute("SELECT 1"))
        assert watcher.rung_by_others()
        assert watcher.engines_may_have_joined()
        assert not watcher.engines_may_have_joined()  # told once
        here.register_engine("e-2", pid=os.getpid(), host="h", proc_start=None, now=0.0)
        assert not watcher.rung_by_others()  # this handle's own ring
        assert not watcher.engines_may_have_joined()
    finally:
        elsewhere.close()
        here.close()


# -- 6. ownership --------------------------------------------------------------------------


def test_run_of_a_dead_engine_is_taken_over_at_once(store_path: Path, spawn: Spawn) -> None:
    first, first_id = start_waiting_engine(spawn, store_path, "store-test-approval", "order-1")
    assert run_of(store_path, "order-1").owner == first_id
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)
    assert run_of(store_path, "order-1").owner == first_id  # nobody else runs it yet

    # A long heartbeat: only the claim made while starting can take the run over.
    second = spawn("engine", str(store_path), "--heartbeat", "60")
    second_id = second.expect("started")["engine_id"]
    run = run_of(store_path, "order-1")
    assert run.owner == second_id
    assert run.status.value == "WAITING"
    assert bool(engine_row(store_path, first_id)["stopped"]) is True

    fn.resolve_promise("order-1", "approval", {"approved": True, "note": "go"}, store=store_path)
    done = wait_status(store_path, "order-1", "COMPLETED")
    assert done.output == {
        "order": "order of order-1",
        "approved": True,
        "note": "go",
        "executor_pid": second.pid,
    }
    types = [event.type for event in run_of(store_path, "order-1").events]
    assert types.count("WORKFLOW_STARTED") == 1
    assert types.count("PROMISE_CREATED") == 1
    assert types.count("PROMISE_RESOLVED") == 1


def test_dead_engines_run_is_taken_over_when_the_workflow_registers_later(
    store_path: Path, spawn: Spawn
) -> None:
    """As in a notebook: the new engine starts first, the defining cell runs afterwards."""
    first, first_id = start_waiting_engine(spawn, store_path, "store-test-approval", "order-5")
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)

    second = spawn("engine", str(store_path), "--heartbeat", "60", "--late-definitions")
    second_id = second.expect("started")["engine_id"]
    second.expect("registered")
    wait_until(
        lambda: run_of(store_path, "order-5").owner == second_id,
        timeout=30,  # generous, yet half the heartbeat (60 s) that would also claim it
        interval=0.02,
        message="registering the workflow did not claim the dead engine's run",
    )
    assert bool(engine_row(store_path, first_id)["stopped"]) is True
    fn.resolve_promise("order-5", "approval", {"approved": True}, store=store_path)
    done = wait_status(store_path, "order-5", "COMPLETED")
    assert done.output["executor_pid"] == second.pid


def test_running_engine_takes_over_when_the_owner_dies_later(
    store_path: Path, spawn: Spawn
) -> None:
    first, first_id = start_waiting_engine(spawn, store_path, "store-test-approval", "order-7")
    second = spawn("engine", str(store_path), "--heartbeat", "0.5")
    second_id = second.expect("started")["engine_id"]
    assert run_of(store_path, "order-7").owner == first_id
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(timeout=10)
    started = time.monotonic()
    wait_until(
        lambda: run_of(store_path, "order-7").owner == second_id,
        timeout=30,
        interval=0.02,
        message="the running engine did not take over the dead engine's run",
    )
    print(f"running engine took over {time.monotonic() - started:.2f} s after the kill")
    fn.resolve_promise("order-7", "approval", {"approved": True}, store=store_path)
    done = wait_status(store_path, "order-7", "COMPLETED")
    assert done.output["executor_pid"] == second.pid


def test_run_of_a_live_engine_is_not_taken_over(store_path: Path, spawn: Spawn) -> None:
    first, first_id = start_waiting_engine(spawn, store_path, "store-test-approval", "order-2")
    # The second engine has the workflow registered and looks for orphans every 0.2 s.
    second = spawn("engine", str(store_path), "--heartbeat", "0.2")
    second_id = second.expect("started")["engine_id"]
    assert run_of(store_path, "order-2").owner == first_id

    def beats_done() -> bool:
        row = engine_row(store_path, second_id)
        return row["beat"] - row["started"] >= 0.35  # two heartbeats, so one claim pass

    wait_until(beats_done, timeout=30, interval=0.05)
    run = run_of(store_path, "order-2")
    assert run.owner == first_id
    assert run.status.value == "WAITING"
    assert bool(engine_row(store_path, first_id)["stopped"]) is False

    fn.resolve_promise("order-2", "approval", {"approved": False}, store=store_path)
    done = wait_status(store_path, "order-2", "COMPLETED")
    assert done.output["executor_pid"] == first.pid
    assert first.popen.poll() is None and second.popen.poll() is None


# -- 7. resolving from another process -------------------------------------------------


def test_resolve_from_a_process_without_engine(store_path: Path, spawn: Spawn) -> None:
    engine, _ = start_waiting_engine(spawn, store_path, "store-test-approval", "order-3")
    assert fn.current_engine() is None
    [pending] = fn.pending_promises("order-3", store=store_path)
    assert pending.name == "approval"
    assert pending.schema is not None and "approved" in json.dumps(pending.schema)

    started = time.monotonic()
    fn.resolve_promise(
        "order-3", "approval", {"approved": True, "note": "from outside"}, store=store_path
    )
    done = wait_status(store_path, "order-3", "COMPLETED")
    print(f"resolve from another process -> run COMPLETED in {time.monotonic() - started:.3f} s")
    assert done.output == {
        "order": "order of order-3",
        "approved": True,
        "note": "from outside",
        "executor_pid": engine.pid,
    }
    assert fn.pending_promises("order-3", store=store_path) == []


def test_resolve_through_another_name_of_the_store_wakes_the_run(
    tmp_path: Path, spawn: Spawn
) -> None:
    """The engine names the store through a symlink; the resolver uses the real path."""
    real = tmp_path / "data" / "flovyn.duckdb"
    make_store(real)
    link = tmp_path / "flovyn.duckdb"
    link.symlink_to(real)
    start_waiting_engine(spawn, link, "store-test-approval", "order-6")
    fn.resolve_promise("order-6", "approval", {"approved": True}, store=real)
    assert wait_status(real, "order-6", "COMPLETED", timeout=30).output["approved"] is True


def test_resolving_twice_from_outside_keeps_the_first_value(store_path: Path, spawn: Spawn) -> None:
    start_waiting_engine(spawn, store_path, "store-test-two-step", "two-1")
    first = {"approved": False, "note": "first"}
    fn.resolve_promise("two-1", "approval", first, store=store_path)
    with pytest.raises(PromiseAlreadyResolved):
        fn.resolve_promise(
            "two-1", "approval", {"approved": True, "note": "second"}, store=store_path
        )
    with pytest.raises(PromiseAlreadyResolved):
        fn.reject_promise("two-1", "approval", "too late", store=store_path)
    rows = fn.sql(
        "SELECT status, value FROM promises WHERE name = 'approval'", store=store_path
    ).to_dict("records")
    assert len(rows) == 1
    assert rows[0]["status"] == "RESOLVED"
    assert json.loads(rows[0]["value"]) == first

    fn.resolve_promise("two-1", "finish", "done", store=store_path)
    done = wait_status(store_path, "two-1", "COMPLETED")
    assert done.output == {"approved": False, "note": "first", "finish": "done"}


def test_invalid_value_from_outside_changes_nothing(store_path: Path, spawn: Spawn) -> None:
    start_waiting_engine(spawn, store_path, "store-test-approval", "order-4")
    before = promises_table(store_path)
    assert len(before) == 1
    events_before = len(run_of(store_path, "order-4").events)

    for bad in ({"approved": "perhaps"}, {"note": "no decision"}, "yes"):
        with pytest.raises(InvalidInput) as info:
            fn.resolve_promise("order-4", "approval", bad, store=store_path)
        assert "approval" in str(info.value)
        assert promises_table(store_path) == before

    run = run_of(store_path, "order-4")
    assert run.status.value == "WAITING"
    assert len(run.events) == events_before
    # The promise is still open to a good value.
    fn.resolve_promise("order-4", "approval", {"approved": True}, store=store_path)
    assert wait_status(store_path, "order-4", "COMPLETED").output["approved"] is True


@pytest.mark.parametrize("count", [3, ops.VALUES_ROWS + 1, 500])
def test_rows_round_trip_through_either_insert(store_path: Path, count: int) -> None:
    """Few rows go in as one VALUES list, many as unnested column arrays: same rows."""
    now = time.time()
    events = [
        EventRow("run-é", i, "STATE_SET", json.dumps({"key": "it's", "value": [i, None]}), now + i)
        for i in range(count)
    ]
    logs = [
        LogRow("run-é", None if i % 2 else f"task-{i}", now + i, "stdout", "INFO", f"l'{i} ✓")
        for i in range(count)
    ]
    store = DuckDBStore(store_path)
    try:
        store.transaction(lambda con: (ops.insert_events(con, events), ops.insert_logs(con, logs)))

        def read(con: duckdb.DuckDBPyConnection) -> tuple[list[Any], list[Any]]:
            e = con.execute("SELECT execution_id, seq, type, payload, ts FROM events ORDER BY seq")
            got_events = e.fetchall()
            got_logs = con.execute(
                "SELECT task_execution_id, message FROM logs ORDER BY ts"
            ).fetchall()
            return got_events, got_logs

        got_events, got_logs = store.read(read)
    finally:
        store.close()
    assert [(r[0], r[1], r[2], json.loads(r[3])) for r in got_events] == [
        (e.execution_id, e.seq, e.type, json.loads(e.payload)) for e in events
    ]
    assert [ops.epoch(r[4]) for r in got_events] == pytest.approx([e.ts for e in events])
    assert got_logs == [(r.task_execution_id, r.message) for r in logs]


@pytest.mark.parametrize("count", [1, 5])
def test_run_updates_one_by_one_or_set_based(store_path: Path, count: int) -> None:
    now = time.time()
    ids = [f"run-{i}" for i in range(2 * count)]
    new = [NewRun(i, f"wf-{i}", "k", "1", None, "engine-1", None, now) for i in ids]
    ended = [
        RunUpdate(i, RunStatus.COMPLETED, now + 1, output_json=f'{{"n": {n}}}')
        for n, i in enumerate(ids[:count])
    ]
    moved = [RunUpdate(i, RunStatus.WAITING, now + 1) for i in ids[count:]]
    store = DuckDBStore(store_path)
    try:
        store.transaction(lambda con: ops.insert_runs(con, new))
        store.transaction(lambda con: ops.update_runs(con, ended + moved))
        rows = store.read(
            lambda con: con.execute(
                "SELECT id, status, output, owner FROM workflow_executions ORDER BY id"
            ).fetchall()
        )
    finally:
        store.close()
    expected = {i: ("COMPLETED", json.dumps({"n": n}), None) for n, i in enumerate(ids[:count])}
    expected.update(dict.fromkeys(ids[count:], ("WAITING", None, "engine-1")))
    got = {r[0]: (r[1], None if r[2] is None else json.dumps(json.loads(r[2])), r[3]) for r in rows}
    assert got == expected


# -- opening a store by name -------------------------------------------------------------


def test_a_path_opens_the_duckdb_backend(store_path: Path) -> None:
    store = open_store(store_path)
    try:
        assert isinstance(store, DuckDBStore)
        assert store.location == str(store_path.resolve())
        assert location_of(store_path) == store.location
    finally:
        store.close()


@pytest.mark.parametrize("target", ["s3://bucket/flovyn", "mysql://db/flovyn"])
def test_an_unknown_store_url_is_one_clear_error(target: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown store URL scheme") as caught:
        open_store(target)
    assert "\n" not in str(caught.value)
    with pytest.raises(InvalidInput, match="unknown store URL scheme"):
        fn.start(store=target)
    assert fn.current_engine() is None
    assert list(tmp_path.iterdir()) == []
