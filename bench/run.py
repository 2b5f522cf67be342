"""Run the benchmarks: ``python bench/run.py [--smoke] [--system NAME] [--workload NAME] [--docs]``.

Measures flovyn_nb and DBOS Transact (``dbos`` at its default polling interval and
``dbos@0.01``) on the same workloads, each system in its own fresh interpreter; then,
when PostgreSQL's server programs are installed, ``flovyn_nb@pg`` and ``dbos@pg`` on one
throwaway server (``pgserver.py``) started for them alone. Prints the side-by-side tables
with the ratios and targets and writes ``bench/out/results.json`` (smoke:
``results-smoke.json``); ``--docs`` also regenerates ``docs/benchmarks.md`` and its plot
(``--report RESULTS...`` does only that, from saved results: a later file's systems and
PostgreSQL section replace the earlier ones', so a PostgreSQL-only run can be reported
beside an earlier run's DuckDB figures).
Exits 1 when a workload errors. Targets are reported (PASS/MISS) but fail the run only
with ``--check``, and never in ``--smoke`` mode, whose tiny sizes say nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import report, report_pg
from bench.systems import ON_POSTGRES, POSTGRES_WORKLOADS, SYSTEMS
from bench.targets import PG_TARGETS, comparisons, judge
from bench.workloads import FULL, LATENCY, ONLY, SMOKE, WORKLOADS

OUT = Path(__file__).resolve().parent / "out" / "results.json"
SMOKE_OUT = OUT.with_name("results-smoke.json")  # never overwrites a full run's results


def plan(system: str, wanted: list[str]) -> list[str]:
    """The workloads a system runs: DBOS at 0.01 s polling only runs the latency ones."""
    names = [w for w in wanted if system in ONLY.get(w, (system,))]
    if system in ON_POSTGRES:
        return [w for w in names if w in POSTGRES_WORKLOADS]
    if system.startswith("dbos@"):
        names = [w for w in names if w in LATENCY]
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks that it runs")
    parser.add_argument("--system", action="append", choices=list(SYSTEMS), default=None)
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS), default=None)
    parser.add_argument(
        "--out", type=Path, default=None, help=f"results file (default {OUT}, smoke: {SMOKE_OUT})"
    )
    parser.add_argument("--docs", action="store_true", help="regenerate docs/benchmarks.md")
    parser.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="only rewrite the docs from results files (a later one's workloads win)",
    )
    parser.add_argument("--child", choices=list(SYSTEMS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    workloads = args.workload or list(WORKLOADS)
    if args.child:
        return child(args.child, workloads, args.smoke, args.out)
    if args.out is None:
        args.out = SMOKE_OUT if args.smoke else OUT
    if args.report:
        results = merge([json.loads(path.read_text()) for path in args.report])
        judge_all(results)
        print(report.text_table(results))
        print()
        print(report_pg.text_table(results))
        for path in report.write_docs(results):
            print(f"wrote {path}")
        return 0

    mode = "smoke" if args.smoke else "full"
    sizes = SMOKE if args.smoke else FULL
    systems = args.system or list(SYSTEMS)
    missing = None
    if args.system is None and (missing := pg_missing()):  # asked for explicitly: fail below
        print(f"PostgreSQL comparison skipped: {missing}", flush=True)
        systems = [s for s in systems if s not in ON_POSTGRES]
    return _measure(args, systems, mode, sizes, workloads, missing)


def pg_missing() -> str | None:
    """Why the PostgreSQL systems cannot run here (their server programs are missing)."""
    from bench.pgserver import PgServerError, bin_dir

    try:
        bin_dir()
    except PgServerError as exc:
        return str(exc)
    return None


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Saved results combined, workload by workload: a later part's workloads (and errors
    about them) replace the earlier parts', its PostgreSQL section the earlier one; the
    first part's meta describes the rest, and ``meta.added`` says what came from when."""
    results = parts[0]
    for part in parts[1:]:
        replaced = []
        for name, system in part["systems"].items():
            mine = results["systems"].setdefault(name, {**system, "workloads": {}})
            mine["workloads"].update(system["workloads"])
            replaced += [f"{name}/{w}" for w in system["workloads"]]
        results["errors"] = [
            e for e in results["errors"] if not any(e.startswith(r) for r in replaced)
        ] + part["errors"]
        if "postgres" in part["meta"]:
            results["meta"]["postgres"] = part["meta"]["postgres"]
        results["meta"].setdefault("added", []).append(
            {
                "started_at": part["meta"]["started_at"],
                "loadavg_at_start": part["meta"]["loadavg_at_start"],
                "mode": part["meta"]["mode"],
                "workloads": replaced,
            }
        )
    return results


def judge_all(results: dict[str, Any]) -> None:
    results["comparisons"] = comparisons(results)
    results["targets"] = judge(results)
    results["pg_targets"] = judge(results, PG_TARGETS)


def _measure(
    args: argparse.Namespace,
    systems: list[str],
    mode: str,
    sizes: Any,
    workloads: list[str],
    pg_skipped: str | None,
) -> int:
    results: dict[str, Any] = {
        "meta": {
            "mode": mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": report.machine(),
            # Other work on the machine inflates latencies: judge the figures with this.
            "loadavg_at_start": os.getloadavg(),
            "sizes": sizes.__dict__,
            "command": "make bench" if not args.smoke else "make bench-smoke",
        },
        "systems": {},
        "errors": [],
    }
    if pg_skipped:
        results["meta"]["postgres"] = {"skipped": pg_skipped}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flovyn-bench-") as tmp:
        for name in [s for s in systems if s not in ON_POSTGRES]:
            _run_child(args, name, workloads, Path(tmp), results)
        on_pg = [s for s in systems if s in ON_POSTGRES]
        if on_pg:
            _on_postgres(args, on_pg, workloads, Path(tmp), results)
    results["meta"]["seconds"] = time.perf_counter() - began
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    judge_all(results)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    if any(s not in ON_POSTGRES for s in results["systems"]):
        print()
        print(report.text_table(results))
    if any(s in ON_POSTGRES for s in results["systems"]):
        print()
        print(report_pg.text_table(results))
    judged = results["targets"] + results["pg_targets"]
    misses = [t for t in judged if t["status"] == "MISS"]
    print(
        f"\n{len(judged)} targets, {len(misses)} missed, "
        f"{len(results['errors'])} error(s) in {results['meta']['seconds']:.0f} s "
        f"({mode} mode{'; sizes too small to judge' if args.smoke else ''})"
    )
    print(f"results in {args.out}")
    if args.docs and not args.smoke:
        for path in report.write_docs(results):
            print(f"wrote {path}")
    elif args.smoke:
        report.markdown(results, plotted=False)  # the page's code runs too, nothing written
    for error in results["errors"]:
        print(f"ERROR {error}")
    if results["errors"]:
        return 1
    if misses and args.check and not args.smoke:
        return 3
    return 0


def _run_child(
    args: argparse.Namespace, name: str, workloads: list[str], tmp: Path, results: dict[str, Any]
) -> None:
    """Measure one system in a fresh interpreter; its part lands in ``results``."""
    names = plan(name, workloads)
    if not names:
        return
    out = tmp / f"{name}.json"
    command = [sys.executable, __file__, "--child", name, "--out", str(out)]
    command += ["--smoke"] * args.smoke
    for w in names:
        command += ["--workload", w]
    print(f"== {name}: {', '.join(names)}", flush=True)
    try:
        code = subprocess.run(command, timeout=3600, check=False).returncode
    except subprocess.TimeoutExpired:
        code = -1
    if code != 0 or not out.exists():
        results["errors"].append(f"{name}: the bench process failed (exit {code})")
        return
    part = json.loads(out.read_text())
    results["systems"][name] = part
    results["errors"] += [f"{name}/{e}" for e in part["errors"]]


def _on_postgres(
    args: argparse.Namespace,
    systems: list[str],
    workloads: list[str],
    tmp: Path,
    results: dict[str, Any],
) -> None:
    """The PostgreSQL systems on one throwaway durable server, started for them alone;
    what it was and how loaded the machine was go to ``meta.postgres``."""
    from bench.pgserver import PgServer, PgServerError
    from bench.systems.postgres import ENV, server_facts

    meta: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loadavg_at_start": os.getloadavg(),
        "mode": results["meta"]["mode"],
        "sizes": results["meta"]["sizes"],
    }
    results["meta"]["postgres"] = meta
    began = time.perf_counter()
    try:
        server = PgServer(durable=True).start()
    except PgServerError as exc:
        results["errors"].append(f"postgres: the server did not start: {exc}")
        return
    try:
        meta.update(server_facts(server.url))
        os.environ[ENV] = server.url  # the children inherit it
        for name in systems:
            _run_child(args, name, workloads, tmp, results)
    finally:
        os.environ.pop(ENV, None)
        server.stop()
    meta["seconds"] = time.perf_counter() - began
    meta["loadavg_at_end"] = os.getloadavg()


def child(name: str, workloads: list[str], smoke: bool, out: Path) -> int:
    """Measure one system (in this fresh interpreter) and write its part of the results."""
    sizes = SMOKE if smoke else FULL
    mode = "smoke" if smoke else "full"
    system = SYSTEMS[name]()
    part: dict[str, Any] = {"settings": system.settings(), "workloads": {}, "errors": []}
    with tempfile.TemporaryDirectory(prefix=f"flovyn-bench-{name}-") as tmp:
        for workload in workloads:
            workdir = Path(tmp) / workload
            workdir.mkdir(parents=True)
            load = os.getloadavg()[0]
            print(f"[{mode}] {name} / {workload} (load {load:.2f}) ...", end=" ", flush=True)
            started = time.perf_counter()
            try:
                outcome = WORKLOADS[workload](system, workdir, sizes)
            except Exception as exc:
                elapsed = time.perf_counter() - started
                print(f"ERROR after {elapsed:.1f} s: {exc!r}", flush=True)
                text = traceback.format_exc()
                print(text, file=sys.stderr)
                part["workloads"][workload] = {"error": text, "seconds": elapsed}
                part["errors"].append(f"{workload}: {exc!r}")
                continue
            elapsed = time.perf_counter() - started
            print(f"{elapsed:.1f} s", flush=True)
            part["workloads"][workload] = {
                "metrics": {m.name: m.to_json() for m in outcome.metrics},
                "details": outcome.details,
                "seconds": elapsed,
                "loadavg_at_start": load,
            }
    out.write_text(json.dumps(part, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
