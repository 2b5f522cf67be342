"""Definitions, starting runs, retry and fork (501 until the client has them), metrics."""

from __future__ import annotations

from typing import Any

import pytest

from flovyn_nb import client


async def test_metrics_of_the_recorded_runs(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api("metrics", params={"days": "14"})
    assert status == 200
    assert answer["sampledRuns"] == 3  # the finished ones
    rates = {r["workflow"]: r for r in answer["failureRates"]}
    assert rates["breaker"] == {"workflow": "breaker", "runs": 1, "failed": 1, "rate": 1.0}
    assert rates["doubler"]["runs"] == 2 and rates["doubler"]["rate"] == 0.0
    [day] = {d["day"] for d in answer["runsPerDay"]}
    assert {(d["workflow"], d["count"]) for d in answer["runsPerDay"]} == {
        ("approval", 1), ("breaker", 1), ("doubler", 2)
    }  # fmt: skip
    durations = {(d["workflow"], d["step"]): d for d in answer["stepDurations"]}
    assert durations[("doubler", "double")]["count"] == 2
    assert (
        0 <= durations[("doubler", "double")]["p50Ms"] <= durations[("doubler", "double")]["p90Ms"]
    )
    assert len(day) == 10


@pytest.mark.parametrize("days", ["0", "400", "week"])
async def test_metrics_days_is_checked(api: Any, seeded: dict[str, str], days: str) -> None:
    status, answer = await api("metrics", params={"days": days})
    assert status == 400 and "days must be" in answer["error"]


@pytest.mark.skipif(hasattr(client, "retry_run"), reason="the client has retry_run")
@pytest.mark.parametrize("action", ["retry", "fork"])
async def test_retry_and_fork_say_what_is_missing(
    api: Any, seeded: dict[str, str], action: str
) -> None:
    status, answer = await api("runs", "brk-1", action, method="POST", json={"fromStep": 1})
    assert status == 501 and f"client.{action}_run" in answer["error"]


@pytest.mark.skipif(hasattr(client, "list_workflows"), reason="the client has the registry")
async def test_workflows_and_start_say_what_is_missing(api: Any, seeded: dict[str, str]) -> None:
    for parts, method in ((("workflows",), "GET"), (("workflows", "doubler", "start"), "POST")):
        status, answer = await api(
            *parts, method=method, **({"json": {"input": 1}} if method == "POST" else {})
        )
        assert status == 501 and "client.list_workflows" in answer["error"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"fromStep": 0}, "fromStep must be"),
        ({"fromStep": True}, "fromStep must be"),
        ({}, "fromStep must be"),
        ({"fromStep": 1, "workflowId": ""}, "workflowId must be"),
    ],
)
async def test_a_bad_fork_is_400(
    api: Any, seeded: dict[str, str], body: dict[str, Any], named: str, monkeypatch: Any
) -> None:
    if not hasattr(client, "fork_run"):  # the checks come first; the function is never called
        monkeypatch.setattr(
            client, "fork_run", lambda *a, **k: pytest.fail("called"), raising=False
        )
    status, answer = await api("runs", "brk-1", "fork", method="POST", json=body)
    assert status == 400 and named in answer["error"]
