"""The DuckDB statement behind :meth:`Store.query_runs`: filter, sort and page in SQL, so
a page of the dashboard costs the same at 100 runs as at 100,000."""

from __future__ import annotations

from typing import Any

from flovyn_nb.store.duckdb.ops import Con, to_ts
from flovyn_nb.store.duckdb.queries import RUN_INFO_COLUMNS, _run_info
from flovyn_nb.store.runquery import RunPage, RunQuery

# Sort keys as SQL expressions (never user text in the statement: only these).
_ORDER = {
    "created": "created_at",
    "updated": "updated_at",
    "duration": "(epoch_ms(updated_at) - epoch_ms(created_at))",
    "status": "status",
    "workflow_id": "workflow_id",
    "kind": "kind",
}
_COLUMNS = RUN_INFO_COLUMNS


def _filters(query: RunQuery, *, with_status: bool) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if with_status and query.statuses:
        clauses.append("status IN (" + ",".join("?" * len(query.statuses)) + ")")
        params.extend(query.statuses)
    if query.kind is not None:
        clauses.append("kind = ?")
        params.append(query.kind)
    if query.search:
        # Substring, case-insensitive; LIKE's own wildcards in the text are literal.
        pattern = "%" + _escape(query.search.lower()) + "%"
        clauses.append(
            "(lower(workflow_id) LIKE ? ESCAPE '\\' OR lower(id) LIKE ? ESCAPE '\\' "
            "OR lower(kind) LIKE ? ESCAPE '\\')"
        )
        params.extend([pattern, pattern, pattern])
    if query.created_from is not None:
        clauses.append("created_at >= ?")
        params.append(to_ts(query.created_from))
    if query.created_to is not None:
        clauses.append("created_at < ?")
        params.append(to_ts(query.created_to))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def query_runs(con: Con, query: RunQuery) -> RunPage:
    where, params = _filters(query, with_status=True)
    direction = "DESC" if query.descending else "ASC"
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM workflow_executions{where} "
        f"ORDER BY {_ORDER[query.sort]} {direction}, workflow_id {direction} "
        f"LIMIT {int(query.limit)} OFFSET {int(query.offset)}",
        params,
    ).fetchall()
    loose, loose_params = _filters(query, with_status=False)
    counts = {
        str(status): int(n)
        for status, n in con.execute(
            f"SELECT status, count(*) FROM workflow_executions{loose} GROUP BY status",
            loose_params,
        ).fetchall()
    }
    if query.statuses:
        total = sum(counts.get(status, 0) for status in query.statuses)
    else:
        total = sum(counts.values())
    return RunPage([_run_info(r, []) for r in rows], total, counts)
