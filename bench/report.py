"""The machine description, the printed table, and ``docs/benchmarks.md`` with its plot."""

from __future__ import annotations

import math
import os
import platform
import sys
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "benchmarks.png"
NOTES = Path(__file__).resolve().parent / "notes.md"
COLUMNS = (
    ("flovyn_nb", "flovyn_nb"),
    ("dbos", "DBOS, 1 s poll"),
    ("dbos@0.01", "DBOS, 0.01 s poll"),
)

COLUMNS_BY_KEY = dict(COLUMNS)

SHORT = {
    ("step_overhead", "ms_per_step"): "step overhead (def)",
    ("step_overhead", "ms_per_step_async"): "step overhead (async def)",
    ("step_overhead", "floor_ms"): "raw 1-row commit (floor)",
    ("step_overhead", "step_over_floor"): "step / raw commit",
    ("one_step_workflow", "latency_ms"): "1-step start->result",
    ("concurrent_one_step", "wall_s"): "500 concurrent 1-step",
    ("resolve_resume", "in_process_ms"): "resolve->resume, same process",
    ("resolve_resume", "cross_process_ms"): "resolve->resume, other process",
    ("timer_lateness", "sleep_lateness_ms"): "timer lateness, 1000 sleeps",
    ("timer_lateness", "timeout_lateness_ms"): "promise-timeout lateness, 1000",
    ("recovery", "from_start_s"): "recovery, from process start",
    ("recovery", "after_registration_s"): "recovery, after registration",
    ("memory", "kb_per_run"): "KB per waiting run",
    ("idle_cpu", "cpu_percent"): "idle CPU",
    ("import_time", "import_ms"): "cold import",
    ("import_time", "heavy_modules"): "heavy modules on import",
    ("import_time", "cli_runs_ms"): "CLI read command",
    ("lock_handover", "handover_ms"): "lock hand-over",
}


def short(item: dict[str, Any]) -> str:
    return SHORT.get((item["workload"], item["metric"]), item["label"])


def _first(path: str, key: str) -> str | None:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(":" if ":" in line else "=")
                if name.strip() == key:
                    return value.strip().strip('"')
    except OSError:
        return None
    return None


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    mem_kb = _first("/proc/meminfo", "MemTotal")
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "os": _first("/etc/os-release", "PRETTY_NAME") or platform.system(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "duckdb": _version("duckdb"),
        "dbos": _version("dbos"),
        "sqlalchemy": _version("sqlalchemy"),
        "flovyn_nb": _version("flovyn_nb"),
        "executable": sys.executable,
    }


def fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def _pair(fig: dict[str, Any] | None) -> str:
    if not fig:
        return "-"
    if fig.get("p99") is None or fig.get("n", 1) <= 1:
        return fmt(fig["median"])
    return f"{fmt(fig['median'])} / {fmt(fig['p99'])}"


def _ratio(row: dict[str, Any]) -> str:
    ratios = row.get("ratio", {})
    parts = [
        f"{fmt(ratios[ref]['median'])}{'' if ref == 'dbos' else ' (0.01 s)'}"
        for ref in ("dbos", "dbos@0.01")
        if ref in ratios and "median" in ratios[ref]
    ]
    return ", ".join(parts) or "-"


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    rows = []
    for row in results.get("comparisons", []):
        unit = row["unit"]
        rows.append([row["label"], unit, *(_pair(row.get(key)) for key, _ in COLUMNS), _ratio(row)])
    return rows


def text_table(results: dict[str, Any]) -> str:
    header = ["figure", "unit", *(f"{title} (med / p99)" for _, title in COLUMNS), "flovyn/DBOS"]
    rows = table_rows(results)
    targets = [
        [t["label"] + f" [{t['stat']}]", t["target"], fmt(t["value"]), t["status"]]
        for t in results.get("targets", [])
    ]
    out = [_render(header, rows), "", _render(["target", "bound", "value", "status"], targets)]
    return "\n".join(out)


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)


def _md(header: list[str], rows: list[list[str]]) -> str:
    def esc(cell: str) -> str:
        return cell.replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def write_docs(results: dict[str, Any]) -> list[Path]:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    written = []
    plotted = plot(results, PLOT)
    if plotted:
        written.append(PLOT)
    DOC.write_text(markdown(results, plotted))
    written.append(DOC)
    return written


def markdown(results: dict[str, Any], plotted: bool) -> str:
    meta = results["meta"]
    m = meta["machine"]
    started = datetime.fromisoformat(meta["started_at"])
    dbos_settings = results["systems"].get("dbos", {}).get("settings", {})
    fast_settings = results["systems"].get("dbos@0.01", {}).get("settings", {})
    flovyn_settings = results["systems"].get("flovyn_nb", {}).get("settings", {})
    sizes = meta["sizes"]
    machine_rows = [
        ["date", started.strftime("%Y-%m-%d %H:%M UTC")],
        ["CPU", f"{m['cpu']} ({m['cores']} cores)"],
        ["memory", f"{m['memory_gb']} GB"],
        ["OS", f"{m['os']} (Linux {m['kernel']})"],
        ["Python", m["python"]],
        ["flovyn_nb / duckdb", f"{m['flovyn_nb']} / {m['duckdb']}"],
        [
            "dbos / sqlalchemy / sqlite",
            f"{m['dbos']} / {m['sqlalchemy']} / {dbos_settings.get('sqlite', '-')}",
        ],
        [
            "DBOS polling (notification_listener_polling_interval_sec)",
            (
                f"{dbos_settings.get('notification_listener_polling_interval_sec', '-')} s (its default)"
                f" and {fast_settings.get('notification_listener_polling_interval_sec', '-')} s"
            ),
        ],
        [
            "flovyn_nb engine settings",
            ", ".join(f"{k}={v}" for k, v in flovyn_settings.get("engine", {}).items()),
        ],
        [
            "load average (start -> end)",
            f"{fmt(meta['loadavg_at_start'][0])} -> {fmt(meta['loadavg_at_end'][0])}",
        ],
        ["whole run", f"{meta['seconds'] / 60:.1f} min"],
    ]
    target_rows = [
        [
            f"{t['label']} ({t['stat']})",
            t["target"],
            fmt(t["value"])
            + (f" {t['unit']}" if t["unit"] and t["value"] is not None else "")
            + (
                f" (flovyn {fmt(t['flovyn'])} vs {t['against']} {fmt(t['dbos'])})"
                if "against" in t
                else ""
            ),
            f"**{t['status']}**" if t["status"] == "MISS" else t["status"],
            t["source"],
        ]
        for t in results["targets"]
    ]
    figure_header = [
        "figure",
        "unit",
        *(f"{title}<br>median / p99" for _, title in COLUMNS),
        "flovyn / DBOS<br>(medians)",
    ]
    passed = sum(t["status"] == "PASS" for t in results["targets"])
    parts = [
        "# Benchmarks: flovyn_nb and DBOS Transact, side by side",
        "",
        (
            "<!-- Generated by `make bench` (bench/run.py --docs) from bench/out/results.json;"
            " edit bench/report.py or bench/notes.md instead. -->"
        ),
        "",
        (
            "Reproduce with one command: **`make bench`** (about 20 minutes on a 2-core machine). It"
            " builds `.venv-bench` (the project, editable, plus the pinned `dbos` and `matplotlib` of"
            " `bench/requirements.txt`; DBOS is never a dependency of flovyn_nb), runs every workload"
            " on both systems, each system in its own fresh interpreter and every workload on a fresh"
            " store file (DuckDB for flovyn_nb, `sqlite:///…` for DBOS), writes"
            " `bench/out/results.json` and regenerates this page and `docs/benchmarks.png`."
            " Then it runs the workloads a server store changes on PostgreSQL, flovyn_nb's"
            " backend and DBOS on one throwaway server (about 10 of the 20 minutes;"
            " [below](#on-postgresql-flovyn_nb-and-dbos-on-one-server))."
            " `make bench-smoke` runs the same code at tiny sizes (part of `make test`)."
        ),
        "",
        "## Machine",
        "",
        _md(["", ""], machine_rows),
        "",
        f"## Targets ({passed} of {len(results['targets'])} met)",
        "",
        (
            "Ratios are flovyn_nb / DBOS from this run, against the faster of the two DBOS"
            " configurations that measured the figure."
        ),
        "",
        _md(["figure", "target", "measured", "status", "from"], target_rows),
        "",
        "## All figures",
        "",
        (
            f"Each workload repeated {sizes['repeats']} times. Latencies pool every sample of every"
            " repeat (median = p50); totals are one value per repeat (median and p99 over the"
            " repeats). DBOS at 0.01 s polling runs only the workloads whose figures depend on"
            " polling."
        ),
        "",
        _md(figure_header, table_rows(results)),
        "",
        *_footnotes(results),
    ]
    if plotted:
        parts += [f"![flovyn_nb vs DBOS]({PLOT.name})", ""]
    if NOTES.exists():
        parts += [NOTES.read_text().rstrip(), ""]
    from bench import report_pg  # it builds on this module's helpers

    parts += report_pg.section(results)
    if results.get("errors"):
        parts += ["## Errors in this run", "", *(f"- `{e}`" for e in results["errors"]), ""]
    return "\n".join(parts)


def _footnotes(results: dict[str, Any]) -> list[str]:
    notes = []
    systems = {k: v for k, v in results["systems"].items() if k in COLUMNS_BY_KEY}
    runs = {
        name: part["workloads"]["memory"]["details"]["runs"]
        for name, part in systems.items()
        if "details" in part["workloads"].get("memory", {})
    }
    if runs:
        counts = ", ".join(f"{name} {n}" for name, n in runs.items())
        notes.append(
            f"Runs added while measuring memory (each step cut to the same time): {counts}."
        )
    samples = {
        name: part["workloads"]["resolve_resume"]["metrics"]["in_process_ms"]["n"]
        for name, part in systems.items()
        if "metrics" in part["workloads"].get("resolve_resume", {})
    }
    if samples:
        counts = ", ".join(f"{name} {n}" for name, n in samples.items())
        notes.append(f"resolve->resume samples per mode: {counts}.")
    for added in results["meta"].get("added", []):
        # The PostgreSQL section states its own run; say where the rest came from.
        here = [w for w in added["workloads"] if w.split("/")[0] in COLUMNS_BY_KEY]
        if here:
            notes.append(
                f"From a later run ({added['started_at'][:16].replace('T', ' ')} UTC,"
                f" {added['mode']} sizes, load {fmt(added['loadavg_at_start'][0])}):"
                f" {', '.join(here)}."
            )
    return [" ".join(notes), ""] if notes else []


def plot(results: dict[str, Any], path: Path) -> bool:
    """Top: flovyn_nb / DBOS per shared figure (log scale). Bottom: every target as
    measured / bound (log scale; left of 1 is a pass)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = [r for r in results.get("comparisons", []) if r.get("ratio")]
    targets = [t for t in results.get("targets", []) if t["value"] is not None and t["bound"]]
    if not rows and not targets:
        return False
    fig, (top, bottom) = plt.subplots(
        2,
        1,
        figsize=(10, 0.32 * (len(rows) + len(targets)) + 2.6),
        gridspec_kw={"height_ratios": [max(len(rows), 1), max(len(targets), 1)]},
    )
    refs = (
        ("dbos", "vs DBOS, 1 s polling (default)", "#4c72b0"),
        ("dbos@0.01", "vs DBOS, 0.01 s polling", "#dd8452"),
    )
    for offset, (ref, title, color) in enumerate(refs):
        ys, xs = [], []
        for i, r in enumerate(rows):
            value = r["ratio"].get(ref, {}).get("median")
            if value:
                ys.append(i + (offset - 0.5) * 0.4)
                xs.append(value)
        top.barh(ys, xs, height=0.38, color=color, label=title)
    top.set_yticks(range(len(rows)), [short(r) for r in rows], fontsize=8)
    top.invert_yaxis()
    top.set_xscale("log")
    top.axvline(1, color="black", linewidth=0.8)
    top.set_xlabel("flovyn_nb / DBOS, medians (< 1: flovyn_nb faster, smaller or cheaper)")
    top.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    top.set_title("The same workloads in the same run", fontsize=10)

    values = [max(t["value"] / t["bound"], 1e-3) for t in targets]
    colors = ["#55a868" if t["status"] == "PASS" else "#c44e52" for t in targets]
    bottom.barh(range(len(targets)), values, color=colors)
    bottom.set_yticks(
        range(len(targets)),
        [f"{short(t)} ({t['stat']}) {t['target']}" for t in targets],
        fontsize=8,
    )
    bottom.invert_yaxis()
    bottom.set_xscale("log")
    bottom.axvline(1, color="black", linewidth=0.8)
    bottom.set_xlabel("flovyn_nb measured / target (< 1: PASS, green; > 1: MISS, red)")
    bottom.set_title("flovyn_nb against its targets", fontsize=10)
    m = results["meta"]["machine"]
    fig.suptitle(
        f"flovyn_nb {m.get('flovyn_nb')} vs DBOS Transact {m.get('dbos')} on SQLite — "
        f"{m['cpu']}, {m['cores']} cores — {results['meta']['started_at'][:10]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
