"""Tables, views and migrations of a flovyn store; refusing files that are not ours.

The event log is the source of truth. ``tasks`` and ``timers`` are views over it, so a
durable step costs one insert into ``events`` and nothing else (see ARCHITECTURE.md §3).
Tables other processes write to (``promises``, ``signals``, the cancel flag on
``workflow_executions``) are real tables: they are the inbox of a run's owner.
"""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb

from flovyn_nb.errors import StoreError

APP = "flovyn_nb"
CURRENT_VERSION = 9

_V1 = [
    """CREATE TABLE schema_version (
        app VARCHAR NOT NULL, version INTEGER NOT NULL, migrated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE workflow_executions (
        id VARCHAR PRIMARY KEY,
        workflow_id VARCHAR NOT NULL UNIQUE,
        kind VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        input JSON,
        output JSON,
        error JSON,
        source_hash VARCHAR,
        owner VARCHAR,
        parent_id VARCHAR,
        cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE events (
        execution_id VARCHAR NOT NULL,
        seq INTEGER NOT NULL,
        type VARCHAR NOT NULL,
        payload JSON NOT NULL,
        ts TIMESTAMP NOT NULL,
        PRIMARY KEY (execution_id, seq))""",
    """CREATE TABLE promises (
        id VARCHAR PRIMARY KEY,
        execution_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        timeout_at TIMESTAMP,
        schema JSON,
        value JSON,
        error VARCHAR,
        created_at TIMESTAMP NOT NULL,
        resolved_at TIMESTAMP,
        resolved_by VARCHAR,
        delivered BOOLEAN NOT NULL DEFAULT FALSE,
        UNIQUE (execution_id, name))""",
    """CREATE TABLE signals (
        id VARCHAR PRIMARY KEY,
        execution_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        value JSON,
        created_at TIMESTAMP NOT NULL,
        delivered BOOLEAN NOT NULL DEFAULT FALSE)""",
    """CREATE TABLE logs (
        execution_id VARCHAR NOT NULL,
        task_execution_id VARCHAR,
        ts TIMESTAMP NOT NULL,
        stream VARCHAR NOT NULL,
        level VARCHAR NOT NULL,
        message VARCHAR NOT NULL)""",
    """CREATE TABLE engines (
        id VARCHAR PRIMARY KEY,
        pid INTEGER NOT NULL,
        host VARCHAR NOT NULL,
        proc_start VARCHAR,
        started_at TIMESTAMP NOT NULL,
        heartbeat_at TIMESTAMP NOT NULL,
        stopped BOOLEAN NOT NULL DEFAULT FALSE)""",
    """CREATE VIEW tasks AS
        SELECT payload->>'$.taskExecutionId' AS id,
            execution_id,
            max(payload->>'$.taskKind') AS kind,
            CASE arg_max(type, seq)
                WHEN 'TASK_SCHEDULED' THEN 'SCHEDULED'
                WHEN 'TASK_STARTED' THEN 'RUNNING'
                WHEN 'TASK_RETRY_SCHEDULED' THEN 'RETRYING'
                WHEN 'TASK_COMPLETED' THEN 'COMPLETED'
                WHEN 'TASK_FAILED' THEN 'FAILED'
                WHEN 'TASK_CANCELLED' THEN 'CANCELLED' END AS status,
            count(*) FILTER (WHERE type = 'TASK_STARTED') AS attempts,
            max(CAST(payload->>'$.maxAttempts' AS INTEGER)) AS max_attempts,
            min(ts) AS scheduled_at,
            min(ts) FILTER (WHERE type = 'TASK_STARTED') AS started_at,
            max(ts) FILTER (WHERE type IN ('TASK_COMPLETED', 'TASK_FAILED', 'TASK_CANCELLED'))
                AS finished_at,
            arg_max(CAST(payload->>'$.nextAttemptAt' AS TIMESTAMP), seq)
                FILTER (WHERE type = 'TASK_RETRY_SCHEDULED') AS next_attempt_at,
            arg_max(CAST(payload->>'$.deadline' AS TIMESTAMP), seq)
                FILTER (WHERE type = 'TASK_STARTED') AS deadline
        FROM events
        WHERE type LIKE 'TASK\\_%' ESCAPE '\\'
        GROUP BY 1, 2""",
    """CREATE VIEW timers AS
        SELECT payload->>'$.timerId' AS id,
            execution_id,
            max(CAST(payload->>'$.fireAt' AS TIMESTAMP)) AS fire_at,
            CASE arg_max(type, seq)
                WHEN 'TIMER_STARTED' THEN 'PENDING'
                WHEN 'TIMER_FIRED' THEN 'FIRED'
                WHEN 'TIMER_CANCELLED' THEN 'CANCELLED' END AS status,
            min(ts) AS started_at
        FROM events
        WHERE type LIKE 'TIMER\\_%' ESCAPE '\\'
        GROUP BY 1, 2""",
    "CREATE INDEX promises_status ON promises (status)",
    "CREATE INDEX logs_execution ON logs (execution_id)",
]

# v2: no index on promises.status. An ART index on a column of a few values never helps a
# scan (zone maps do), and it turned every status change into a delete plus an insert in
# three indexes: timing out 1000 promises took ~8 ms per statement instead of ~1 ms.
_V2 = ["DROP INDEX promises_status"]

# v3: signals get a per-run sequence. Ordered by (created_at, id) alone, signals sent within
# one clock tick (always, under a FakeClock) came back in uuid order, not in sending order.
# Existing signals keep the order they had.
_V3 = [
    "ALTER TABLE signals ADD COLUMN seq BIGINT",
    """UPDATE signals SET seq = numbered.n FROM (
        SELECT id, row_number() OVER (PARTITION BY execution_id ORDER BY created_at, id) AS n
        FROM signals) AS numbered
        WHERE signals.id = numbered.id""",
]

# v4: a cancel request carries its reason (``fn.cancel_workflow(id, reason=...)``) from
# the requesting process to the run's owner, which records it and raises it in the workflow
# as ``WorkflowCancelled.reason``.
_V4 = ["ALTER TABLE workflow_executions ADD COLUMN cancel_reason VARCHAR"]

# v5 (issue 15): steps of cached tasks (@task(cache=True)), found by task kind, source hash
# and input hash in one indexed lookup before each cached step runs.
_V5 = [
    """CREATE TABLE step_cache (
        task_kind VARCHAR NOT NULL,
        source_hash VARCHAR NOT NULL,
        input_hash VARCHAR NOT NULL,
        execution_id VARCHAR NOT NULL,
        task_execution_id VARCHAR NOT NULL,
        output JSON,
        created_at TIMESTAMP NOT NULL)""",
    "CREATE INDEX step_cache_key ON step_cache (input_hash, task_kind, source_hash)",
]

# v6: the definitions registry. Every engine records the workflows and tasks it registers
# (one row per kind and source hash, old versions kept) and which of them it serves on
# which queues, so a process without the code (the CLI, the server, a sidebar) can show a
# workflow's source and build a form for its input.
_V6 = [
    """CREATE TABLE definitions (
        type VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source_hash VARCHAR NOT NULL,
        version INTEGER NOT NULL,
        description VARCHAR,
        source VARCHAR,
        input_schema JSON,
        output_schema JSON,
        registered_at TIMESTAMP NOT NULL,
        last_registered_at TIMESTAMP NOT NULL,
        PRIMARY KEY (type, kind, source_hash))""",
    """CREATE TABLE definition_servers (
        engine_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source_hash VARCHAR NOT NULL,
        queues JSON NOT NULL,
        registered_at TIMESTAMP NOT NULL,
        PRIMARY KEY (engine_id, type, kind))""",
]

# v7: queues. A run waits in a named queue until an engine serving it claims it;
# ``claimed_at`` is its first claim (a run counts against its queue's concurrency from
# then until it ends, and its claim against the rate limit). Runs so far were all started
# by the engine that owned them: claimed when created.
_V7 = [
    "ALTER TABLE workflow_executions ADD COLUMN queue VARCHAR NOT NULL DEFAULT 'default'",
    "ALTER TABLE workflow_executions ADD COLUMN claimed_at TIMESTAMP",
    "UPDATE workflow_executions SET claimed_at = created_at",
    """CREATE TABLE queues (
        name VARCHAR PRIMARY KEY,
        concurrency INTEGER,
        worker_concurrency INTEGER,
        rate_limit INTEGER,
        rate_period DOUBLE,
        updated_at TIMESTAMP NOT NULL)""",
]

# v8: cron schedules. ``last_slot`` is the latest slot fired: firing is a compare-and-set
# on it, so of the engines racing for a slot one fires it (and the run ids, derived from
# the schedule and the slot, make a second start of the same slot impossible anyway).
_V8 = [
    """CREATE TABLE schedules (
        name VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        cron VARCHAR NOT NULL,
        input JSON,
        queue VARCHAR NOT NULL,
        catch_up VARCHAR NOT NULL,
        paused BOOLEAN NOT NULL DEFAULT FALSE,
        next_fire TIMESTAMP,
        last_slot TIMESTAMP,
        created_at TIMESTAMP NOT NULL)""",
]

# v9: the task queue. A task scheduled with ``queue=`` a queue its run's engine does not
# serve waits here for an engine that does; the claimer writes its progress and outcome
# into the row, which the run's owner reads like an inbox (see store/taskqueue.py).
_V9 = [
    """CREATE TABLE task_queue (
        id VARCHAR PRIMARY KEY,
        execution_id VARCHAR NOT NULL,
        workflow_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        queue VARCHAR NOT NULL,
        input JSON,
        max_attempts INTEGER NOT NULL,
        timeout_seconds DOUBLE,
        retry JSON,
        status VARCHAR NOT NULL,
        owner VARCHAR,
        attempt INTEGER NOT NULL,
        resume_at TIMESTAMP,
        output JSON,
        error JSON,
        timed_out BOOLEAN NOT NULL,
        created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL)""",
]

# version -> statements that bring a store from version-1 to version.
MIGRATIONS: dict[int, list[str]] = {
    1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5, 6: _V6, 7: _V7, 8: _V8, 9: _V9,
}  # fmt: skip


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {row[0] for row in rows}


def prepare(con: duckdb.DuckDBPyConnection, path: str) -> bool:
    """Create the schema in an empty file, migrate an older one, refuse anything else.

    Returns:
        True when it created or migrated the schema (the change is in the WAL).

    Raises:
        StoreError: the file holds other tables, another app's data, or a newer schema.
            Nothing is written in that case.
    """
    tables = _tables(con)
    if not tables:
        _migrate(con, 0)
        return True
    if "schema_version" not in tables:
        raise StoreError(
            f"{path} is a DuckDB file but not a flovyn store (it has tables "
            f"{', '.join(sorted(tables)[:5])}); point FLOVYN_NB_STORE at another file",
            path=path,
        )
    row = con.execute(
        "SELECT app, max(version) FROM schema_version GROUP BY app ORDER BY 2 DESC LIMIT 1"
    ).fetchone()
    if row is None or row[0] != APP:
        raise StoreError(f"{path} is not a flovyn store (schema_version says {row})", path=path)
    version = int(row[1])
    if version > CURRENT_VERSION:
        raise StoreError(
            f"{path} was written by a newer flovyn_nb (store schema v{version}; this version "
            f"reads up to v{CURRENT_VERSION}); upgrade flovyn_nb to use it",
            path=path,
        )
    if version < CURRENT_VERSION:
        _migrate(con, version)
        return True
    return False


def _migrate(con: duckdb.DuckDBPyConnection, from_version: int) -> None:
    con.execute("BEGIN TRANSACTION")
    try:
        for version in range(from_version + 1, CURRENT_VERSION + 1):
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?)",
                [APP, version, datetime.now(UTC).replace(tzinfo=None)],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
