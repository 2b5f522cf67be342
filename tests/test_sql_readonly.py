"""``fn.sql`` / ``flovyn-nb sql`` are read-only unless ``write=True`` / ``--write``.

Every refusal is checked against the data: the store's tables hash the same afterwards,
and no file appeared.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.errors import InvalidInput
from flovyn_nb.testing import wait_until

CLI = [sys.executable, "-m", "flovyn_nb.cli"]
TABLES = ["workflow_executions", "events", "promises", "signals", "logs", "engines"]


@fn.workflow(name="sql-waits")
async def waits(ctx: fn.WorkflowContext) -> object:
    ctx.logger.info("waiting")
    return await ctx.promise("approval")


@fn.workflow(name="sql-done")
async def done(ctx: fn.WorkflowContext, n: int) -> int:
    return n * 2


def _make_store(path: Path) -> Path:
    """A store with a completed run and a run waiting on a promise; no engine left."""
    with fn.start(path):
        assert fn.start_workflow(done, 21, workflow_id="done-1").result(timeout=30) == 42
        fn.start_workflow(waits, workflow_id="waits-1")
        wait_until(lambda: fn.pending_promises(store=path), timeout=30)
    return path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One store for the tests that must not change it (each checks that it did not)."""
    return _make_store(tmp_path_factory.mktemp("shared") / "record.duckdb")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store of the test's own, for the tests that change it."""
    return _make_store(tmp_path / "record.duckdb")


def _record(store: Path) -> str:
    """Everything in the store's tables (and which tables and sequences exist), one digest."""
    parts = [
        fn.sql("select table_name from duckdb_tables() order by 1", store=store).to_json(),
        fn.sql("select sequence_name from duckdb_sequences() order by 1", store=store).to_json(),
    ]
    for table in TABLES:
        frame = fn.sql(f"select * from {table} order by all", store=store)
        parts.append(frame.to_json(date_format="iso"))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


REFUSED = [
    ("DROP TABLE events", "DROP statements are refused"),
    ("DELETE FROM promises", "DELETE statements are refused"),
    ("UPDATE workflow_executions SET status = 'COMPLETED'", "UPDATE statements are refused"),
    ("INSERT INTO logs SELECT * FROM logs", "INSERT statements are refused"),
    ("TRUNCATE events", "DELETE statements are refused"),
    ("ALTER TABLE events ADD COLUMN x INT", "ALTER statements are refused"),
    ("CREATE TABLE extra(i INT)", "CREATE statements are refused"),
    ("CREATE TEMP TABLE extra(i INT)", "CREATE statements are refused"),
    ("CREATE SEQUENCE s", "CREATE statements are refused"),
    (
        "MERGE INTO promises USING promises AS s ON true WHEN MATCHED THEN DELETE",
        "MERGE_INTO statements are refused",
    ),
    # a SELECT in form that writes: DuckDB's read-only transaction refuses it
    (
        "WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d",
        "would write to the store",
    ),
    # EXPLAIN ANALYZE runs its statement: EXPLAIN is refused as a whole
    ("EXPLAIN ANALYZE DELETE FROM events", "EXPLAIN statements are refused"),
    ("EXPLAIN SELECT 1", "EXPLAIN statements are refused"),
    # functions that act beyond the query, wherever they sit in it
    ("SELECT * FROM checkpoint()", "checkpoint() acts beyond the query"),
    ('SELECT * FROM "Force_Checkpoint"()', "force_checkpoint() acts beyond the query"),
    (
        "WITH x AS (SELECT 1) SELECT * FROM x WHERE EXISTS (SELECT * FROM enable_profiling())",
        "enable_profiling() acts beyond the query",
    ),
    ("SELECT * FROM query('SELECT * FROM checkpoint()')", "query() acts beyond the query"),
    ("SELECT setseed(0.5)", "setseed() acts beyond the query"),
    ("SELECT 1; DROP TABLE events", "one statement at a time; this text holds 2"),
    ("SELECT 1; SELECT 2", "one statement at a time; this text holds 2"),
    ("DELETE FROM events; SELECT 1", "one statement at a time"),
    ("BEGIN TRANSACTION", "TRANSACTION statements are refused"),
    ("COMMIT", "TRANSACTION statements are refused"),
    ("CHECKPOINT", "CALL statements are refused"),
    ("VACUUM", "VACUUM statements are refused"),
    ("SET threads = 1", "SET statements are refused"),
    ("RESET threads", "SET statements are refused"),
    ("PRAGMA disable_checkpoint_on_shutdown", "PRAGMA statements are refused"),
    ("CALL pragma_version()", "CALL statements are refused"),
    ("INSTALL httpfs", "LOAD statements are refused"),
    ("LOAD json", "LOAD statements are refused"),
    ("DETACH record", "DETACH statements are refused"),
    ("USE memory", "SET statements are refused"),
    ("PREPARE p AS DELETE FROM events", "PREPARE statements are refused"),
    ("", "the query is empty"),
    (";", "the query is empty"),
    ("DELET FROM events", "bad SQL: Parser Error"),
]


@pytest.mark.parametrize(("query", "message"), REFUSED)
def test_a_query_that_is_not_read_only_is_refused_and_changes_nothing(
    shared: Path, query: str, message: str
) -> None:
    store = shared
    before = _record(store)
    with pytest.raises(InvalidInput) as caught:
        fn.sql(query, store=store)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert _record(store) == before


@pytest.mark.parametrize(
    "query",
    [
        "COPY events TO '{out}/events.csv'",
        "COPY (SELECT * FROM promises) TO '{out}/p.parquet' (FORMAT parquet)",
        "EXPORT DATABASE '{out}/dump'",
        "ATTACH '{out}/other.duckdb' AS other",
    ],
)
def test_statements_that_write_files_are_refused(shared: Path, tmp_path: Path, query: str) -> None:
    store = shared
    out = tmp_path / "out"
    out.mkdir()
    before = _record(store)
    with pytest.raises(InvalidInput, match="statements are refused"):
        fn.sql(query.format(out=out), store=store)
    assert list(out.iterdir()) == []
    assert _record(store) == before


def test_reads_in_their_several_forms_still_work(shared: Path, tmp_path: Path) -> None:
    store = shared
    csv = tmp_path / "owners.csv"
    csv.write_text("workflow_id,owner\ndone-1,ann\n")
    assert fn.sql("select count(*) as n from workflow_executions", store=store)["n"][0] == 2
    assert list(
        fn.sql(
            "with r as (select workflow_id from workflow_executions) "
            "select workflow_id from r order by 1",
            store=store,
        )["workflow_id"]
    ) == ["done-1", "waits-1"]
    assert "seq" in list(fn.sql("describe events", store=store)["column_name"])
    assert "events" in list(fn.sql("show tables", store=store)["name"])
    assert len(fn.sql("summarize events", store=store)) > 0
    assert len(fn.sql("select * from query_table('events')", store=store)) > 0
    assert fn.sql("from promises select count(*) as n", store=store)["n"][0] == 1
    # documented: a query may read files the user can read (it cannot write any)
    joined = fn.sql(
        f"select o.owner from workflow_executions w join read_csv('{csv}') o using (workflow_id)",
        store=store,
    )
    assert list(joined["owner"]) == ["ann"]
    assert fn.sql("select ? + 1 as n", [41], store=store)["n"][0] == 42


def test_write_true_is_the_explicit_way_to_change_the_record(store: Path) -> None:
    before = fn.sql("select count(*) as n from logs", store=store)["n"][0]
    assert before > 0
    fn.sql("delete from logs where message = ?", ["waiting"], store=store, write=True)
    assert fn.sql("select count(*) as n from logs", store=store)["n"][0] == before - 1
    fn.sql("create table notes(i int); insert into notes values (1), (2)", store=store, write=True)
    assert fn.sql("select sum(i) as s from notes", store=store)["s"][0] == 3
    snapshot = _record(store)
    with pytest.raises(InvalidInput, match="leave out BEGIN / COMMIT / ROLLBACK"):
        fn.sql("begin; drop table events; commit", store=store, write=True)
    # a failing maintenance text is rolled back whole
    with pytest.raises(InvalidInput, match="bad SQL"):
        fn.sql("delete from promises; select * from nowhere", store=store, write=True)
    assert _record(store) == snapshot


def test_refused_queries_leave_a_live_engine_working(engine: Runtime, store_path: Path) -> None:
    # the query shares the engine's connection: a refused or rolled-back query must leave
    # no transaction open on it
    with pytest.raises(InvalidInput, match="would write"):
        fn.sql("with d as (delete from events returning *) select * from d")
    with pytest.raises(InvalidInput, match="bad SQL"):
        fn.sql("select 'a'::int")
    assert fn.start_workflow(done, 5, workflow_id="after").result(timeout=30) == 10
    fn.sql("delete from logs", write=True)
    assert fn.start_workflow(done, 6, workflow_id="after-2").result(timeout=30) == 12
    assert fn.sql("select count(*) as n from workflow_executions")["n"][0] == 2


def _cli(*args: str, store: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "query",
    [
        "DROP TABLE events",
        "DELETE FROM promises",
        "UPDATE workflow_executions SET status = 'COMPLETED'",
        "WITH d AS (DELETE FROM events RETURNING *) SELECT count(*) FROM d",
    ],
)
def test_cli_sql_refuses_writes_with_one_line(shared: Path, query: str) -> None:
    store = shared
    before = _record(store)
    result = _cli("sql", query, store=store)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: queries are read-only"), lines
    assert "--write" in lines[0]
    assert result.stdout == ""
    assert _record(store) == before


def test_cli_sql_write_flag_changes_the_record(store: Path) -> None:
    result = _cli("sql", "--write", "DELETE FROM logs", "--csv", store=store)
    assert result.returncode == 0, result.stderr
    assert fn.sql("select count(*) as n from logs", store=store)["n"][0] == 0
    read = _cli(
        "sql", "select workflow_id from workflow_executions order by 1", "--csv", store=store
    )
    assert read.returncode == 0 and read.stdout.split() == ["workflow_id", "done-1", "waits-1"]
