"""The bar flovyn_nb is held to (issues 2, 4, 6 and 17), judged on one run's results.

A target bounds one statistic (``median`` or ``p99``) of one flovyn_nb figure, either in
the figure's own unit or as a ratio to the same figure of DBOS measured in the same run.
A ratio is taken against the *better* of the DBOS configurations that measured the figure
(default polling and 0.01 s), so flovyn_nb never wins against a handicapped DBOS.

``TARGETS`` judge flovyn_nb on DuckDB against DBOS on SQLite; ``PG_TARGETS`` (issue 17)
judge ``flovyn_nb@pg`` against ``dbos@pg``, both on one PostgreSQL server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SUBJECT = "flovyn_nb"
REFERENCES = ("dbos", "dbos@0.01")
PG_SUBJECT = "flovyn_nb@pg"
PG_REFERENCES = ("dbos@pg",)


@dataclass(frozen=True)
class Target:
    workload: str
    metric: str
    stat: str  # "median" or "p99"
    bound: float  # the figure (or ratio) must be at most this
    ratio_to_dbos: bool = False
    source: str = ""
    at_least: bool = False  # a floor (throughput), not a ceiling
    subject: str = SUBJECT
    references: tuple[str, ...] = REFERENCES

    def describe(self) -> str:
        sign = ">=" if self.at_least else "<="
        return f"{sign} {self.bound:g}{'x DBOS' if self.ratio_to_dbos else ''}"

    def met(self, value: float) -> bool:
        return value >= self.bound if self.at_least else value <= self.bound


TARGETS: tuple[Target, ...] = (
    # issue 6
    Target("step_overhead", "ms_per_step", "median", 0.6, True, "issue 6"),
    Target("step_overhead", "step_over_floor", "median", 1.25, False, "issue 6"),
    Target("one_step_workflow", "latency_ms", "median", 0.5, True, "issue 6"),
    Target("concurrent_one_step", "wall_s", "median", 0.2, True, "issue 6"),
    Target("resolve_resume", "in_process_ms", "p99", 20, False, "issues 2, 6"),
    Target("resolve_resume", "cross_process_ms", "p99", 150, False, "issues 4, 6"),
    Target("timer_lateness", "sleep_lateness_ms", "p99", 20, False, "issues 2, 6"),
    Target("timer_lateness", "timeout_lateness_ms", "p99", 20, False, "issue 6"),
    Target("recovery", "after_registration_s", "median", 1.0, False, "issue 6"),
    Target("memory", "kb_per_run", "median", 20, False, "issue 6"),
    # issue 4
    Target("idle_cpu", "cpu_percent", "median", 2.0, False, "issue 4"),
    # issue 2
    Target("step_overhead", "ms_per_step", "median", 1.5, False, "issue 2"),
    Target("one_step_workflow", "latency_ms", "median", 4.0, False, "issue 2"),
    Target("import_time", "import_ms", "median", 300, False, "issue 2"),
    Target("import_time", "heavy_modules", "median", 0, False, "issue 2"),
    # issue 14: was asserted in tests/test_cli.py (0.5 s on an idle machine)
    Target("import_time", "cli_runs_ms", "median", 500, False, "issue 14"),
    # issue 16: the dashboard at 10,000 runs
    Target("dashboard_at_scale", "first_render_ms", "p99", 200, False, "issue 16"),
    Target("dashboard_at_scale", "page_turn_ms", "p99", 200, False, "issue 16"),
    Target("dashboard_at_scale", "filter_ms", "p99", 200, False, "issue 16"),
    Target("dashboard_at_scale", "search_ms", "p99", 200, False, "issue 16"),
)


def _pg(workload: str, metric: str, stat: str, bound: float, ratio: bool, **kw: Any) -> Target:
    """A target of issue 17: flovyn_nb@pg, as a ratio to dbos@pg on the same server."""
    return Target(
        workload, metric, stat, bound, ratio, "issue 17",
        subject=PG_SUBJECT, references=PG_REFERENCES, **kw,
    )  # fmt: skip


#: Issue 17: flovyn_nb's PostgreSQL backend and DBOS on the same server.
PG_TARGETS: tuple[Target, ...] = (
    _pg("step_overhead", "ms_per_step", "median", 0.7, True),
    _pg("one_step_workflow", "latency_ms", "median", 0.7, True),
    _pg("queue_throughput", "workflows_per_s", "median", 1.5, True, at_least=True),
    _pg("resolve_resume", "cross_process_ms", "p99", 50, False),
)


def figure(results: dict[str, Any], system: str, workload: str, name: str) -> dict[str, Any] | None:
    """One figure of one system from results.json, or None when it was not measured."""
    run = results["systems"].get(system, {}).get("workloads", {}).get(workload, {})
    found = run.get("metrics", {}).get(name)
    return found if isinstance(found, dict) else None


def judge(results: dict[str, Any], targets: tuple[Target, ...] = TARGETS) -> list[dict[str, Any]]:
    """Every target with the measured value and PASS / MISS (or n/a when not measured)."""
    verdicts = []
    for target in targets:
        mine = figure(results, target.subject, target.workload, target.metric)
        entry: dict[str, Any] = {
            "workload": target.workload,
            "metric": target.metric,
            "label": mine["label"] if mine else target.metric,
            "unit": "x" if target.ratio_to_dbos else (mine["unit"] if mine else ""),
            "stat": target.stat,
            "bound": target.bound,
            "target": target.describe(),
            "source": target.source,
            "value": None,
            "status": "n/a",
        }
        if mine is not None and mine.get(target.stat) is not None:
            value = float(mine[target.stat])
            if target.ratio_to_dbos:
                refs = {
                    ref: float(theirs[target.stat])
                    for ref in target.references
                    if (theirs := figure(results, ref, target.workload, target.metric))
                    and theirs.get(target.stat)
                }
                if refs:
                    pick = max if target.at_least else min  # DBOS at its best
                    best = pick(refs, key=lambda r: refs[r])
                    entry.update(dbos=refs[best], against=best, flovyn=value)
                    value = value / refs[best]
                else:
                    value = math.nan
            if not math.isnan(value):
                entry["value"] = value
                entry["status"] = "PASS" if target.met(value) else "MISS"
        verdicts.append(entry)
    return verdicts


def comparisons(
    results: dict[str, Any], subject: str = SUBJECT, references: tuple[str, ...] = REFERENCES
) -> list[dict[str, Any]]:
    """Every figure flovyn_nb shares with DBOS: both medians and p99s, and the ratios."""
    rows = []
    mine = results["systems"].get(subject, {}).get("workloads", {})
    for workload, run in mine.items():
        for name, fig in run.get("metrics", {}).items():
            row: dict[str, Any] = {
                "workload": workload,
                "metric": name,
                "label": fig["label"],
                "unit": fig["unit"],
                subject: {"median": fig["median"], "p99": fig["p99"], "n": fig["n"]},
            }
            for ref in references:
                theirs = figure(results, ref, workload, name)
                if theirs is None:
                    continue
                row[ref] = {"median": theirs["median"], "p99": theirs["p99"], "n": theirs["n"]}
                for stat in ("median", "p99"):
                    a, b = fig.get(stat), theirs.get(stat)
                    if a is not None and b:
                        row.setdefault("ratio", {}).setdefault(ref, {})[stat] = a / b
            rows.append(row)
    return rows
