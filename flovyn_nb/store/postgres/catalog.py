"""The PostgreSQL statements of the catalog: registered definitions and cron schedules
(queues' rows are in ``queues.py``, next to the claims they limit); the twin of
``store/duckdb/catalog_ops.py``.

What a server adds: concurrent writers. A new definition's version is numbered under a
transaction advisory lock on its (type, kind), so two engines registering new sources of
one kind at once get versions 1 and 2, not a primary-key clash. A schedule's firing is
an ``UPDATE`` conditional on its last slot: a second engine firing the same slot waits
for the first one's row lock, then finds the last slot moved and fires nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

from flovyn_nb.store.catalog import DefinitionRow, FireSchedule, NewDefinition, ScheduleRow, Server
from flovyn_nb.store.postgres import ops
from flovyn_nb.store.postgres.ops import Con, epoch, to_ts
from flovyn_nb.store.rows import EngineRow

# Advisory lock keys of definitions: hashtextextended("type/kind", _DEFINITION_SEED).
_DEFINITION_SEED = 1


def record_definitions(
    con: Con,
    definitions: Sequence[NewDefinition],
    engine_id: str | None,
    queues: Sequence[str],
    now: float,
) -> None:
    stamp = to_ts(now)
    for d in definitions:
        con.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, %s))",
            [f"{d.type}/{d.kind}", _DEFINITION_SEED],
        )
        moved = con.execute(
            "UPDATE definitions SET last_registered_at = %s "
            "WHERE type = %s AND kind = %s AND source_hash = %s RETURNING version",
            [stamp, d.type, d.kind, d.source_hash],
        ).fetchall()
        if not moved:
            con.execute(
                "INSERT INTO definitions (type, kind, source_hash, version, description, "
                "source, input_schema, output_schema, registered_at, last_registered_at) "
                "SELECT %s, %s, %s, coalesce(max(version), 0) + 1, %s, %s, %s::json, %s::json, "
                "%s, %s FROM definitions WHERE type = %s AND kind = %s",
                [d.type, d.kind, d.source_hash, d.description, d.source, d.input_schema_json,
                 d.output_schema_json, stamp, stamp, d.type, d.kind],
            )  # fmt: skip
        if engine_id is not None:
            con.execute(
                "INSERT INTO definition_servers VALUES (%s, %s, %s, %s, %s::json, %s) "
                "ON CONFLICT (engine_id, type, kind) DO UPDATE SET "
                "source_hash = excluded.source_hash, queues = excluded.queues, "
                "registered_at = excluded.registered_at",
                [engine_id, d.type, d.kind, d.source_hash, json.dumps(list(queues)), stamp],
            )


def list_definitions(
    con: Con, *, type: str | None, kind: str | None, all_versions: bool
) -> list[DefinitionRow]:
    where, params = ["TRUE"], []
    if type is not None:
        where.append("d.type = %s")
        params.append(type)
    if kind is not None:
        where.append("d.kind = %s")
        params.append(kind)
    # PostgreSQL has no QUALIFY: the latest version is row 1 of a ranked subquery.
    rows = con.execute(
        "SELECT * FROM (SELECT d.type, d.kind, d.version, d.source_hash, d.description, "
        "d.source, d.input_schema, d.output_schema, d.registered_at, d.last_registered_at, "
        "row_number() OVER (PARTITION BY d.type, d.kind "
        "ORDER BY d.last_registered_at DESC, d.version DESC) AS n "
        f"FROM definitions AS d WHERE {' AND '.join(where)}) AS ranked "
        f"{'' if all_versions else 'WHERE n = 1 '}"
        "ORDER BY type DESC, kind, last_registered_at DESC, version DESC",
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
            input_schema=r[6],  # JSON columns arrive parsed
            output_schema=r[7],
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
        found.setdefault((r[0], r[1]), []).append(Server(engine, r[2], list(r[3])))
    return found


# -- schedules --------------------------------------------------------------------------

# ``input::text``: a ScheduleRow carries its input as the JSON text that was written.
_SCHEDULE_COLS = (
    "name, kind, cron, input::text, queue, catch_up, paused, next_fire, last_slot, created_at"
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


def put_schedule(con: Con, row: ScheduleRow) -> ScheduleRow:
    inserted = con.execute(
        "INSERT INTO schedules (name, kind, cron, input, queue, catch_up, paused, next_fire, "
        "last_slot, created_at) VALUES (%s, %s, %s, %s::json, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (name) DO NOTHING RETURNING name",
        [row.name, row.kind, row.cron, row.input_json, row.queue, row.catch_up, row.paused,
         to_ts(row.next_fire), to_ts(row.last_slot), to_ts(row.created_at)],
    ).fetchall()  # fmt: skip
    if inserted:
        return row
    # Defined again (a cell run again, a worker restarted): the definition is replaced,
    # what was fired and whether it is paused are kept; an unchanged cron keeps its next
    # slot (a restart must not skip a slot that fell due while nothing ran).
    found = con.execute(
        f"UPDATE schedules SET kind = %s, input = %s::json, queue = %s, catch_up = %s, "
        "next_fire = CASE WHEN cron = %s THEN next_fire ELSE %s END, cron = %s "
        f"WHERE name = %s RETURNING {_SCHEDULE_COLS}",
        [row.kind, row.input_json, row.queue, row.catch_up, row.cron, to_ts(row.next_fire),
         row.cron, row.name],
    ).fetchone()  # fmt: skip
    if found is None:
        return put_schedule(con, row)  # deleted since the insert found it: insert it now
    return _schedule(found)


def list_schedules(con: Con) -> list[ScheduleRow]:
    rows = con.execute(f"SELECT {_SCHEDULE_COLS} FROM schedules ORDER BY name").fetchall()
    return [_schedule(r) for r in rows]


def set_paused(con: Con, name: str, paused: bool, next_fire: float | None) -> bool:
    # A new next slot forgets the slots before it (those passed while paused).
    found = con.execute(
        "UPDATE schedules SET paused = %s, next_fire = coalesce(%s, next_fire), "
        "last_slot = CASE WHEN %s THEN NULL ELSE last_slot END WHERE name = %s RETURNING name",
        [paused, to_ts(next_fire), next_fire is not None, name],
    ).fetchall()
    return bool(found)


def delete_schedule(con: Con, name: str) -> bool:
    return bool(
        con.execute("DELETE FROM schedules WHERE name = %s RETURNING name", [name]).fetchall()
    )


def fire_schedule(con: Con, fire: FireSchedule) -> list[str] | None:
    """None when the schedule moved on (another engine fired) or is paused or gone."""
    # READ COMMITTED: a concurrent firer waits for this row's lock, then re-checks the
    # condition against the committed row and matches nothing.
    moved = con.execute(
        "UPDATE schedules SET last_slot = %s, next_fire = %s WHERE name = %s AND NOT paused "
        "AND last_slot IS NOT DISTINCT FROM %s RETURNING name",
        [to_ts(fire.last_slot), to_ts(fire.next_fire), fire.name, to_ts(fire.expected_last_slot)],
    ).fetchall()
    if not moved:
        return None
    started = []
    for run, event in fire.runs:
        try:
            with con.transaction():  # a savepoint: a taken workflow id undoes this run only
                ops.insert_runs(con, [run])
        except psycopg.errors.UniqueViolation:
            continue
        ops.insert_events(con, [event])
        started.append(run.workflow_id)
    return started
