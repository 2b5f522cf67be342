"""Metrics over the runs of the last days: step durations, failure rates, runs per day.

Run counts come from the run rows (one read, no history). Step durations need histories,
read one run at a time through the client, so they come from a sample: the newest
:data:`SAMPLE` finished runs of the window (the answer says how many it used).
"""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from flovyn_nb import client
from flovyn_nb.errors import UnknownWorkflow
from flovyn_nb.history.folded import StepKind
from flovyn_nb.model import RunStatus
from flovyn_nb.server.shapes import folded

__all__ = ["SAMPLE", "metrics"]

SAMPLE = 100  # finished runs whose histories feed the step durations (one read each)
_TIMED = (StepKind.TASK, StepKind.CHILD)


def _percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def metrics(store: str, days: int, *, now: float | None = None) -> dict[str, Any]:
    """The metrics of the runs created in the last ``days`` days (blocking)."""
    now = time.time() if now is None else now
    since = now - days * 86400
    runs = [r for r in client.list_runs(store=store) if r.created_at.timestamp() >= since]

    per_day: Counter[tuple[str, str]] = Counter()
    finished: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    for run in runs:
        day = datetime.fromtimestamp(run.created_at.timestamp(), UTC).date().isoformat()
        per_day[(day, run.kind)] += 1
        if run.status.is_terminal:
            finished[run.kind] += 1
            failed[run.kind] += run.status is RunStatus.FAILED

    durations: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    sample = [r for r in runs if r.status.is_terminal][:SAMPLE]  # newest first
    for run in sample:
        try:
            history = folded(client.get_run(run.workflow_id, store=store))
        except UnknownWorkflow:  # deleted meanwhile
            continue
        for item in history.commands:
            if item.kind in _TIMED and item.end is not None:
                durations[(run.kind, item.name)].append((item.end - item.start) * 1000)

    step_durations = []
    for (workflow, name), values in sorted(durations.items()):
        values.sort()
        step_durations.append(
            {
                "workflow": workflow,
                "step": name,
                "p50Ms": round(_percentile(values, 0.5), 1),
                "p90Ms": round(_percentile(values, 0.9), 1),
                "count": len(values),
            }
        )
    return {
        "days": days,
        "sampledRuns": len(sample),
        "stepDurations": step_durations,
        "failureRates": [
            {
                "workflow": kind,
                "runs": count,
                "failed": failed[kind],
                "rate": round(failed[kind] / count, 4),
            }
            for kind, count in sorted(finished.items())
        ],
        "runsPerDay": [
            {"day": day, "workflow": kind, "count": count}
            for (day, kind), count in sorted(per_day.items())
        ],
    }
