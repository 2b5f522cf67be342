"""The DuckDB statements of the catalog: definitions (and, below, queues and schedules).

Functions over one open connection, like ``ops.py``; times cross as epoch seconds.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from flovyn_nb.store.catalog import DefinitionRow, NewDefinition, QueueRow, Server
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
