"""``GET metrics``: step duration distributions and failure rates per workflow, runs per
day, over every run created in the window (``client.run_metrics`` aggregates them with
the store's own SQL: three queries whatever the number of runs, no history read here).
"""

from __future__ import annotations

import time
from typing import Any

from flovyn_nb import client
from flovyn_nb.server.shapes import iso

__all__ = ["empty", "metrics"]


def empty(days: int) -> dict[str, Any]:
    """The answer for a store that has no run yet (no file)."""
    return {
        "days": days,
        "since": None,
        "runs": 0,
        "stepDurations": [],
        "failureRates": [],
        "runsPerDay": [],
    }


def metrics(store: str, days: int, *, now: float | None = None) -> dict[str, Any]:
    """The metrics of the runs created in the last ``days`` days (blocking).

    Raises:
        InvalidInput: ``days`` out of range.
    """
    found = client.run_metrics(days=days, now=time.time() if now is None else now, store=store)
    return {
        "days": days,
        "since": iso(found.since),
        "runs": found.runs,
        "stepDurations": [
            {
                "workflow": item.workflow,
                "step": item.step,
                "kind": item.kind,
                "count": item.count,
                "p50Ms": item.p50_ms,
                "p90Ms": item.p90_ms,
                "p99Ms": item.p99_ms,
                "maxMs": item.max_ms,
                "histogram": [{"upToMs": upper, "count": n} for upper, n in item.histogram],
            }
            for item in found.step_durations
        ],
        "failureRates": [
            {
                "workflow": item.workflow,
                "runs": item.finished,
                "failed": item.failed,
                "rate": round(item.rate, 4),
            }
            for item in found.failure_rates
        ],
        "runsPerDay": [
            {"day": item.day.isoformat(), "workflow": item.workflow, "count": item.count}
            for item in found.runs_per_day
        ],
    }
