"""The PostgreSQL section of ``docs/benchmarks.md`` and its printed table (issue 17):
``flovyn_nb@pg`` and ``dbos@pg`` on one throwaway server, measured by ``bench/run.py``.

Its own meta (``results["meta"]["postgres"]``: when, the load, the server's version and
settings) because it is measured as its own group, on its own server, and may come from
a different run than the DuckDB section (``run.py --report`` merges saved results).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from bench.report import _md, _pair, _render, fmt
from bench.targets import PG_REFERENCES, PG_SUBJECT, comparisons

NOTES = Path(__file__).resolve().parent / "notes-pg.md"
TITLE = "On PostgreSQL: flovyn_nb and DBOS on one server"
DBOS = PG_REFERENCES[0]

#: Issue 17's five figures first, in its order; then the rest of what both measured.
ORDER = (
    ("step_overhead", "ms_per_step"),
    ("one_step_workflow", "latency_ms"),
    ("queue_throughput", "workflows_per_s"),
    ("resolve_resume", "cross_process_ms"),
    ("queue_recovery", "recovered_s"),
    ("step_overhead", "ms_per_step_async"),
    ("step_overhead", "ms_per_step_busy"),
    ("step_overhead", "floor_ms"),
    ("queue_throughput", "workflows_per_s_steady"),
    ("resolve_resume", "in_process_ms"),
)


def rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures both systems measured, issue 17's five first, each with its target."""
    found = comparisons(results, PG_SUBJECT, PG_REFERENCES)

    def rank(row: dict[str, Any]) -> int:
        key = (row["workload"], row["metric"])
        return ORDER.index(key) if key in ORDER else len(ORDER)

    verdicts = {(t["workload"], t["metric"]): t for t in results.get("pg_targets", [])}
    ordered = sorted(found, key=rank)  # stable: the rest keep the workloads' order
    for row in ordered:
        row["verdict"] = verdicts.get((row["workload"], row["metric"]))
    return ordered


def _ratio(row: dict[str, Any]) -> str:
    ratio = row.get("ratio", {}).get(DBOS, {}).get("median")
    return "-" if ratio is None else f"{fmt(ratio)}x"


def _target(row: dict[str, Any]) -> tuple[str, str]:
    verdict = row.get("verdict")
    if not verdict:
        return "", ""
    bound = f"{verdict['stat']} {verdict['target']}"
    if verdict["value"] is None:
        return bound, verdict["status"]
    unit = "x" if "x DBOS" in verdict["target"] else f" {verdict['unit']}"
    return bound, f"{verdict['status']} ({fmt(verdict['value'])}{unit})"


def _load(results: dict[str, Any], row: dict[str, Any]) -> str:
    loads = [
        results["systems"].get(name, {}).get("workloads", {}).get(row["workload"], {})
        for name in (PG_SUBJECT, DBOS)
    ]
    return " / ".join(fmt(w.get("loadavg_at_start")) for w in loads)


def _cells(row: dict[str, Any]) -> list[str]:
    mine, theirs = _pair(row.get(PG_SUBJECT)), _pair(row.get(DBOS))
    return [row["label"], row["unit"], mine, theirs, _ratio(row), *_target(row)]


def text_table(results: dict[str, Any]) -> str:
    """The printed table: both systems' figures, the ratio, and issue 17's targets."""
    header = ["figure (PostgreSQL)", "unit", "flovyn_nb (med / p99)", "DBOS (med / p99)"]
    header += ["flovyn/DBOS", "target", "status"]
    return _render(header, [_cells(row) for row in rows(results)])


def section(results: dict[str, Any]) -> list[str]:
    """The markdown section (empty when the run measured neither system on PostgreSQL
    and said nothing about why)."""
    meta = results["meta"].get("postgres")
    measured = any(name in results["systems"] for name in (PG_SUBJECT, DBOS))
    if not meta and not measured:
        return []
    parts = [f"## {TITLE}", ""]
    if not measured:
        why = (meta or {}).get("skipped") or "see the errors below"
        return [*parts, f"Not measured in this run: {why}", ""]
    meta = meta or {}
    verdicts = results.get("pg_targets", [])
    passed = sum(t["status"] == "PASS" for t in verdicts)
    missing = sum(t["status"] == "n/a" for t in verdicts)
    unmeasured = f"; {missing} not measured" if missing else ""
    settings = results["systems"].get(PG_SUBJECT, {}).get("settings", {})
    sizes = meta.get("sizes") or results["meta"]["sizes"]
    started = meta.get("started_at")
    load = meta.get("loadavg_at_start"), meta.get("loadavg_at_end")
    machine_rows = [
        [
            "date",
            datetime.fromisoformat(started).strftime("%Y-%m-%d %H:%M UTC") if started else "-",
        ],
        [
            "PostgreSQL",
            (
                f"{meta.get('server_version', '-')} (fsync={meta.get('fsync', '-')}, "
                f"synchronous_commit={meta.get('synchronous_commit', '-')}, "
                f"shared_buffers={meta.get('shared_buffers', '-')}), on this machine, 127.0.0.1"
            ),
        ],
        ["psycopg / dbos", f"{meta.get('psycopg', '-')} / {meta.get('dbos', '-')}"],
        [
            "flovyn_nb engine settings",
            ", ".join(f"{k}={v}" for k, v in settings.get("engine", {}).items()) or "-",
        ],
        [
            "load average (start -> end)",
            " -> ".join(fmt(x[0]) if x else "-" for x in load),
        ],
        ["this part of the run", f"{meta['seconds'] / 60:.1f} min" if "seconds" in meta else "-"],
    ]
    header = ["figure", "unit", "flovyn_nb<br>median / p99", "DBOS<br>median / p99"]
    header += ["flovyn / DBOS<br>(medians)", "target (issue 17)", "status", "load at start"]
    body = [[*_cells(row), _load(results, row)] for row in rows(results)]
    body = [[f"**{c}**" if c.startswith("MISS") else c for c in r] for r in body]
    parts += [
        (
            "The same harness on one throwaway PostgreSQL server (`bench/pgserver.py`: Debian's"
            " server programs, `initdb` into a temp folder, durable: `fsync` and synchronous"
            " commit on), started for this part alone: `flovyn_nb@pg` is flovyn_nb's PostgreSQL"
            ' backend (`fn.start(store="postgresql://…")`), `dbos@pg` DBOS Transact with'
            " `system_database_url` on the same server; every workload (every repeat of the"
            " queue workloads) on a fresh database. DBOS learns of messages by LISTEN/NOTIFY"
            " here, so it has no polling interval to tune."
        ),
        "",
        _md(["", ""], machine_rows),
        "",
        f"### Figures and issue 17's targets ({passed} of {len(verdicts)} met{unmeasured})",
        "",
        (
            "Ratios are flovyn_nb / DBOS medians from this run (for throughput higher is better,"
            " elsewhere lower). Latencies pool every sample; totals (ms per step of a"
            f" {sizes['steps']}-step workflow, throughput, recovery) are one value per repeat"
            f" ({sizes['repeats']} repeats; {sizes['queue_repeats']} for the queue workloads)."
            " *load at start*: the machine's 1-minute load average when each system's workload"
            " began (flovyn_nb / DBOS; 2 cores)."
        ),
        "",
        _md(header, body),
        "",
        *_queue_notes(results),
        *_path_table(results),
    ]
    if NOTES.exists():
        parts += [NOTES.read_text().rstrip(), ""]
    return parts


def _queue_notes(results: dict[str, Any]) -> list[str]:
    """Where the queue figures' time went, from each repeat's marks."""
    notes = []
    for name in (PG_SUBJECT, DBOS):
        work = results["systems"].get(name, {}).get("workloads", {})
        runs = work.get("queue_throughput", {}).get("details", {}).get("repeats", [])
        first = [r["first"] - r["spawned"] for r in runs if "first" in r]
        serve = [r["done"] - r["first"] for r in runs if "first" in r and "done" in r]
        enqueue = [r["enqueue_s"] for r in runs if "enqueue_s" in r]
        kills = work.get("queue_recovery", {}).get("details", {}).get("repeats", [])
        flight = [r["in_flight"] for r in kills if "in_flight" in r]
        if first:
            notes.append(
                f"{name}: first run completed {_span(first)} s after the workers' spawn, the"
                f" rest took {_span(serve)} s; enqueueing took {_span(enqueue)} s;"
                f" runs in flight at the kill: {', '.join(str(n) for n in flight) or '-'}."
            )
    return [" ".join(notes), ""] if notes else []


def _span(values: list[float]) -> str:
    low, high = min(values, default=0.0), max(values, default=0.0)
    return fmt(low) if fmt(low) == fmt(high) else f"{fmt(low)} to {fmt(high)}"


PATH_LABELS = {
    "resolver_call": "resolver's call: its transaction committed (other process)",
    "notify_heard": "NOTIFY delivered: the engine's listening thread counted the ring",
    "inbox_scan_start": "engine loop woke, inbox scan handed to a thread",
    "inbox_scan": "inbox scan: one read of the run's undelivered promises",
    "history_commit": "run resumed, its next commit (the step's start) returned",
    "step_start": "the step's body began in its worker thread",
}


def _path_table(results: dict[str, Any]) -> list[str]:
    """Where flovyn_nb's cross-process resolve -> resume went (``pg_probe.py``)."""
    work = results["systems"].get(PG_SUBJECT, {}).get("workloads", {})
    details = work.get("resolve_resume", {}).get("details", {})
    path = details.get("cross_process_path_ms")
    if not path:
        return []
    body = [
        [PATH_LABELS.get(name, name), fmt(s["p50"]), fmt(s["p90"]), fmt(s["p99"]), fmt(s["max"])]
        for name, s in path.items()
    ]
    slowest = details.get("cross_process_slowest_ms", [])
    worst = [
        " + ".join(fmt(v) for v in sample.values()) + f" = {fmt(sum(sample.values()))}"
        for sample in slowest
    ]
    return [
        (
            "Where flovyn_nb's resolve -> resume from another process goes, segment by segment"
            " (`bench/pg_probe.py` times the engine's store calls in the bench process;"
            f" {path[next(iter(path))]['n']} samples, ms; a sample's segments add up to its"
            " latency (a ring heard before the resolver's call returned counts from that return),"
            " a column's percentiles do not):"
        ),
        "",
        _md(["segment", "median", "p90", "p99", "max"], body),
        "",
        *(
            [
                f"The slowest 2 % of samples, segment by segment in that order: {'; '.join(worst)}.",
                "",
            ]
            if worst
            else []
        ),
    ]
