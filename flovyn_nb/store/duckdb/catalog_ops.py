"""The DuckDB statements of the catalog: definitions (and, below, queues and schedules).

Functions over one open connection, like ``ops.py``; times cross as epoch seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from flovyn_nb.store.catalog import (
    DefinitionRow,
    FireSchedule,
    NewDefinition,
    QueueRow,
    ScheduleRow,
    Server,
)
from flovyn_nb.store.duckdb import ops
from flovyn_nb.store.duckdb.ops import epoch, to_ts
from flovyn_nb.store.rows import EngineRow

Con = duckdb.DuckDBPyConnection


def _json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def record_definitions(
    con: Con,
    definitions: Sequence[NewDefinition],
    engine_id: str | None,
    queues: Sequence[str],
    now: float,
) -> None:
    stamp = to_ts(now)
    for d in definitions:
        moved = con.execute(
            "UPDATE definitions SET last_registered_at = ? "
            "WHERE type = ? AND kind = ? AND source_hash = ? RETURNING version",
            [stamp, d.type, d.kind, d.source_hash],
        ).fetchall()
        if not moved:
            # The next version of the kind, in the inserting transaction (one writer per
            # file; on a server database the primary key settles a race by a retry).
            con.execute(
                "INSERT INTO definitions (type, kind, source_hash, version, description, "
                "source, input_schema, output_schema, registered_at, last_registered_at) "
                "SELECT ?, ?, ?, coalesce(max(version), 0) + 1, ?, ?, ?, ?, ?, ? "
                "FROM definitions WHERE type = ? AND kind = ?",
                [
                    d.type,
                    d.kind,
                    d.source_hash,
                    d.description,
                    d.source,
                    d.input_schema_json,
                    d.output_schema_json,
                    stamp,
                    stamp,
                    d.type,
                    d.kind,
                ],
            )
        if engine_id is not None:
            # DELETE + INSERT rather than an upsert: DuckDB refuses ON CONFLICT DO UPDATE
            # of a key touched earlier in the same transaction.
            con.execute(
                "DELETE FROM definition_servers WHERE engine_id = ? AND type = ? AND kind = ?",
                [engine_id, d.type, d.kind],
            )
            con.execute(
                "INSERT INTO definition_servers VALUES (?, ?, ?, ?, ?, ?)",
                [engine_id, d.type, d.kind, d.source_hash, json.dumps(list(queues)), stamp],
            )


def list_definitions(
    con: Con, *, type: str | None, kind: str | None, all_versions: bool
) -> list[DefinitionRow]:
    where, params = ["TRUE"], []
    if type is not None:
        where.append("d.type = ?")
        params.append(type)
    if kind is not None:
        where.append("d.kind = ?")
        params.append(kind)
    latest = (
        ""
        if all_versions
        else " QUALIFY row_number() OVER (PARTITION BY d.type, d.kind "
        "ORDER BY d.last_registered_at DESC, d.version DESC) = 1"
    )
    rows = con.execute(
        "SELECT d.type, d.kind, d.version, d.source_hash, d.description, d.source, "
        "d.input_schema, d.output_schema, d.registered_at, d.last_registered_at "
        f"FROM definitions AS d WHERE {' AND '.join(where)}{latest} "
        "ORDER BY d.type DESC, d.kind, d.last_registered_at DESC, d.version DESC",
        params,
    ).fetchall()
    servers = _servers(con)
    return [
        DefinitionRow(
            type=r[0],
            kind=r[1],
            version=r[2],
            source_hash=r[3],
            description=r[4],
            source=r[5],
            input_schema=_json(r[6]),
            output_schema=_json(r[7]),
            registered_at=epoch(r[8]) or 0.0,
            last_registered_at=epoch(r[9]) or 0.0,
            servers=servers.get((r[0], r[1]), []),
        )
        for r in rows
    ]


def _servers(con: Con) -> dict[tuple[str, str], list[Server]]:
    rows = con.execute(
        "SELECT s.type, s.kind, s.source_hash, s.queues, e.id, e.pid, e.host, e.proc_start, "
        "e.heartbeat_at FROM definition_servers AS s JOIN engines AS e ON e.id = s.engine_id "
        "WHERE NOT e.stopped ORDER BY e.started_at"
    ).fetchall()
    found: dict[tuple[str, str], list[Server]] = {}
    for r in rows:
        engine = EngineRow(r[4], r[5], r[6], r[7], epoch(r[8]) or 0.0)
        found.setdefault((r[0], r[1]), []).append(Server(engine, r[2], json.loads(r[3])))
    return found


# -- queues ---------------------------------------------------------------------------


def set_queue(con: Con, queue: QueueRow, now: float) -> None:
    con.execute("DELETE FROM queues WHERE name = ?", [queue.name])
    con.execute(
        "INSERT INTO queues VALUES (?, ?, ?, ?, ?, ?)",
        [
            queue.name,
            queue.concurrency,
            queue.worker_concurrency,
            queue.rate_limit,
            queue.rate_period,
            to_ts(now),
        ],
    )


def list_queues(con: Con) -> list[QueueRow]:
    rows = con.execute(
        "SELECT name, concurrency, worker_concurrency, rate_limit, rate_period FROM queues "
        "ORDER BY name"
    ).fetchall()
    return [QueueRow(*r) for r in rows]


# -- schedules --------------------------------------------------------------------------

_SCHEDULE_COLS = (
    "name, kind, cron, input, queue, catch_up, paused, next_fire, last_slot, created_at"
)


def _schedule(r: Sequence[Any]) -> ScheduleRow:
    return ScheduleRow(
        name=r[0],
        kind=r[1],
        cron=r[2],
        input_json=r[3] if r[3] is not None else "null",
        queue=r[4],
        catch_up=r[5],
        paused=bool(r[6]),
        next_fire=epoch(r[7]),
        last_slot=epoch(r[8]),
        created_at=epoch(r[9]) or 0.0,
    )


def no_schedule(name: str) -> str:
    return f"no schedule named {name!r}; see `flovyn-nb schedules list`"


def find_schedule(con: Con, name: str) -> ScheduleRow | None:
    row = con.execute(f"SELECT {_SCHEDULE_COLS} FROM schedules WHERE name = ?", [name]).fetchone()
    return None if row is None else _schedule(row)


def put_schedule(con: Con, row: ScheduleRow) -> ScheduleRow:
    old = find_schedule(con, row.name)
    if old is None:
        con.execute(
            f"INSERT INTO schedules ({_SCHEDULE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row.name,
                row.kind,
                row.cron,
                row.input_json,
                row.queue,
                row.catch_up,
                row.paused,
                to_ts(row.next_fire),
                to_ts(row.last_slot),
                to_ts(row.created_at),
            ],
        )
        return row
    # Defined again (a cell run again, a worker restarted): the definition is replaced,
    # what was fired and whether it is paused are kept; an unchanged cron keeps its next
    # slot (a restart must not skip a slot that fell due while nothing ran).
    next_fire = old.next_fire if old.cron == row.cron else row.next_fire
    con.execute(
        "UPDATE schedules SET kind = ?, cron = ?, input = ?, queue = ?, catch_up = ?, "
        "next_fire = ? WHERE name = ?",
        [row.kind, row.cron, row.input_json, row.queue, row.catch_up, to_ts(next_fire), row.name],
    )
    found = find_schedule(con, row.name)
    assert found is not None  # updated in this transaction
    return found


def list_schedules(con: Con) -> list[ScheduleRow]:
    rows = con.execute(f"SELECT {_SCHEDULE_COLS} FROM schedules ORDER BY name").fetchall()
    return [_schedule(r) for r in rows]


def set_paused(con: Con, name: str, paused: bool, next_fire: float | None) -> bool:
    # A new next slot forgets the slots before it (those passed while paused).
    found = con.execute(
        "UPDATE schedules SET paused = ?, next_fire = coalesce(?, next_fire), "
        "last_slot = CASE WHEN ? THEN NULL ELSE last_slot END WHERE name = ? RETURNING name",
        [paused, to_ts(next_fire), next_fire is not None, name],
    ).fetchall()
    return bool(found)


def delete_schedule(con: Con, name: str) -> bool:
    return bool(
        con.execute("DELETE FROM schedules WHERE name = ? RETURNING name", [name]).fetchall()
    )


def fire_schedule(con: Con, fire: FireSchedule) -> list[str] | None:
    """None when the schedule moved on (another engine fired) or is paused or gone."""
    moved = con.execute(
        "UPDATE schedules SET last_slot = ?, next_fire = ? WHERE name = ? AND NOT paused "
        "AND last_slot IS NOT DISTINCT FROM ? RETURNING name",
        [to_ts(fire.last_slot), to_ts(fire.next_fire), fire.name, to_ts(fire.expected_last_slot)],
    ).fetchall()
    if not moved:
        return None
    started = []
    for run, event in fire.runs:
        taken = con.execute(
            "SELECT 1 FROM workflow_executions WHERE workflow_id = ?", [run.workflow_id]
        ).fetchone()
        if taken is None:
            ops.insert_runs(con, [run])
            ops.insert_events(con, [event])
            started.append(run.workflow_id)
    return started
