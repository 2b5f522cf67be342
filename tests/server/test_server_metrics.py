"""``GET metrics``: every run of the window counts (SQL in the store, not a sample of the
newest runs), on a DuckDB file and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from helper_proc import helper

DOUBLERS = 120  # more than the newest 100 runs the durations once came from


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    return store_target


@pytest.fixture
def many(store_path: Path | str, tmp_path: Path) -> None:
    """The runs, recorded by another process (the server's has no workflow code)."""
    proc = helper(tmp_path, "many", str(store_path), str(DOUBLERS), startup=120)
    try:
        proc.expect("seeded", timeout=180)
    finally:
        proc.kill()


async def test_metrics_count_every_run_of_the_window(api: Any, many: None) -> None:
    status, answer = await api("metrics", params={"days": "14"})
    assert status == 200, answer
    assert answer["runs"] == DOUBLERS + 2
    assert answer["since"].endswith("T00:00:00.000000+00:00")
    rates = {r["workflow"]: r for r in answer["failureRates"]}
    assert rates["breaker"] == {"workflow": "breaker", "runs": 2, "failed": 2, "rate": 1.0}
    assert rates["doubler"] == {"workflow": "doubler", "runs": DOUBLERS, "failed": 0, "rate": 0.0}
    today = datetime.now(UTC).date().isoformat()
    assert {(d["day"], d["workflow"], d["count"]) for d in answer["runsPerDay"]} == {
        (today, "doubler", DOUBLERS), (today, "breaker", 2)
    }  # fmt: skip
    durations = {(d["workflow"], d["step"]): d for d in answer["stepDurations"]}
    assert set(durations) == {("doubler", "double"), ("breaker", "explode")}
    double = durations[("doubler", "double")]
    assert (double["kind"], double["count"]) == ("task", DOUBLERS)
    assert 0 <= double["p50Ms"] <= double["p90Ms"] <= double["p99Ms"] <= double["maxMs"]
    assert sum(b["count"] for b in double["histogram"]) == DOUBLERS
    assert durations[("breaker", "explode")]["count"] == 2


@pytest.mark.parametrize("days", ["0", "400", "week"])
async def test_metrics_days_is_checked(api: Any, days: str) -> None:
    status, answer = await api("metrics", params={"days": days})
    assert status == 400 and "days must be" in answer["error"]
