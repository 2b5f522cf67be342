"""Run the benchmarks: ``python bench/run.py [--smoke] [--system NAME] [--workload NAME]``.

Prints a table and writes ``bench/out/results.json``. Exits 1 when a workload errors.
Performance targets are reported (PASS/MISS) but fail the run only with ``--check``, and
never in ``--smoke`` mode, whose tiny sizes say nothing about performance.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.systems import SYSTEMS
from bench.workloads import FULL, SMOKE, WORKLOADS, Metric

OUT = Path(__file__).resolve().parent / "out" / "results.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; checks that it runs")
    parser.add_argument("--system", action="append", choices=sorted(SYSTEMS), default=None)
    parser.add_argument("--workload", action="append", choices=list(WORKLOADS), default=None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"results file (default {OUT})")
    parser.add_argument("--check", action="store_true", help="exit 3 when a target is missed")
    args = parser.parse_args(argv)

    sizes = SMOKE if args.smoke else FULL
    mode = "smoke" if args.smoke else "full"
    systems = args.system or list(SYSTEMS)
    workloads = args.workload or list(WORKLOADS)
    results: dict[str, Any] = {
        "meta": {
            "mode": mode,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # Other work on the machine inflates latencies: judge the figures with this.
            "loadavg_at_start": os.getloadavg(),
            "sizes": sizes.__dict__,
        },
        "systems": {},
        "errors": [],
    }
    rows: list[tuple[str, str, Metric]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="flovyn-bench-") as tmp:
        for system_name in systems:
            system = SYSTEMS[system_name]()
            per_system: dict[str, Any] = results["systems"].setdefault(system_name, {})
            for workload_name in workloads:
                workdir = Path(tmp) / system_name / workload_name
                workdir.mkdir(parents=True)
                load = os.getloadavg()[0]
                print(
                    f"[{mode}] {system_name} / {workload_name} (load {load:.2f}) ...",
                    end=" ",
                    flush=True,
                )
                started = time.perf_counter()
                try:
                    outcome = WORKLOADS[workload_name](system, workdir, sizes)
                except Exception as exc:
                    elapsed = time.perf_counter() - started
                    print(f"ERROR after {elapsed:.1f} s: {exc!r}", flush=True)
                    text = traceback.format_exc()
                    per_system[workload_name] = {
                        "error": text,
                        "seconds": elapsed,
                        "loadavg_at_start": load,
                    }
                    results["errors"].append(f"{system_name}/{workload_name}: {exc!r}")
                    print(text, file=sys.stderr)
                    continue
                elapsed = time.perf_counter() - started
                print(f"{elapsed:.1f} s", flush=True)
                per_system[workload_name] = {
                    "metrics": {m.name: m.to_json() for m in outcome.metrics},
                    "details": outcome.details,
                    "seconds": elapsed,
                    "loadavg_at_start": load,
                }
                rows += [(system_name, workload_name, m) for m in outcome.metrics]
    results["meta"]["seconds"] = time.perf_counter() - began
    results["meta"]["loadavg_at_end"] = os.getloadavg()
    misses = [f"{s}/{w}/{m.name}" for s, w, m in rows if m.status == "MISS"]
    results["misses"] = misses

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(_table(rows, mode))
    print(
        f"\n{len(rows)} figures, {len(misses)} missed target(s), {len(results['errors'])} error(s)"
    )
    print(f"in {results['meta']['seconds']:.1f} s; results in {args.out}")
    for error in results["errors"]:
        print(f"ERROR {error}")
    if results["errors"]:
        return 1
    if misses and args.check and not args.smoke:
        return 3
    return 0


def _table(rows: list[tuple[str, str, Metric]], mode: str) -> str:
    def fmt(value: float | None) -> str:
        if value is None:
            return ""
        return f"{value:.0f}" if value == int(value) and abs(value) >= 10 else f"{value:.3g}"

    header = ("system", "figure", "value", "unit", "target", "status")
    lines = [
        (
            system,
            metric.label,
            fmt(metric.value),
            metric.unit,
            "" if metric.target is None else f"<= {fmt(metric.target)}",
            # Smoke sizes are too small to judge; show the verdict but mark it.
            metric.status.lower() if mode == "smoke" else metric.status,
        )
        for system, _, metric in rows
    ]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    right = {2, 4}

    def render(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([render(header), rule, *(render(line) for line in lines)])


if __name__ == "__main__":
    sys.exit(main())
