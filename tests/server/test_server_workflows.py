"""Definitions, starting runs, retry and fork (501 until the client has them)."""

from __future__ import annotations

from typing import Any

import pytest

from flovyn_nb import client
from flovyn_nb.definitions import registry


async def test_recorded_workflows_with_their_input_schema(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api("workflows")
    assert status == 200
    found = {w["name"]: w for w in answer["workflows"]}
    assert set(found) == {"approval", "breaker", "doubler"}
    doubler = found["doubler"]
    assert doubler["inputSchema"] == {"type": "integer"}
    assert doubler["served"] is False  # the engine that recorded it has stopped
    assert isinstance(doubler["version"], int)


async def test_a_run_shows_the_source_it_started_with(api: Any, seeded: dict[str, str]) -> None:
    _, run = await api("runs", "dbl-1")
    assert "async def doubler(ctx: fn.WorkflowContext, x: int) -> int:" in run["source"]


async def test_start_records_a_run_for_an_engine_to_claim(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api(
        "workflows", "doubler", "start", method="POST", json={"input": 21, "workflowId": "new-1"}
    )
    assert (status, answer) == (201, {"workflowId": "new-1"})
    # The server has no workflow code: the input was checked against the recorded schema.
    assert registry.find_workflow("doubler") is None
    _, run = await api("runs", "new-1")
    assert (run["kind"], run["input"], run["queue"]) == ("doubler", 21, "default")
    assert run["status"] in ("PENDING", "RUNNING")  # until an engine serving it claims it
    # Starts are idempotent by workflow id: the same run again.
    status, answer = await api(
        "workflows", "doubler", "start", method="POST", json={"input": 22, "workflowId": "new-1"}
    )
    assert (status, answer) == (201, {"workflowId": "new-1"})
    _, page = await api("runs")
    assert page["total"] == 5


@pytest.mark.parametrize(
    ("name", "body", "status", "named"),
    [
        ("doubler", {"input": "twenty"}, 400, "input of workflow 'doubler'"),
        ("doubler", {"input": 1, "workflowId": 7}, 400, "workflowId must be"),
        ("doubler", {"input": 1, "queue": ""}, 400, "queue must be"),
        ("nope", {"input": 1}, 404, "'nope'"),
        ("doubler", {"input": 1, "workflowId": "brk-1"}, 400, "already used by a run of 'breaker'"),
    ],
)
async def test_a_bad_start_records_nothing(
    api: Any, seeded: dict[str, str], name: str, body: dict[str, Any], status: int, named: str
) -> None:
    answer_status, answer = await api("workflows", name, "start", method="POST", json=body)
    assert answer_status == status and named in answer["error"]
    _, page = await api("runs")
    assert page["total"] == 4


async def test_retry_reopens_a_failed_run_once(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api("runs", "brk-1", "retry", method="POST")
    assert (status, answer) == (202, {"workflowId": "brk-1"})
    _, run = await api("runs", "brk-1")
    assert run["status"] in ("PENDING", "RUNNING")  # until an engine serving it claims it
    # The run view's timeline shows the attempt and the one it superseded.
    assert run["attempt"] == 2
    [first] = run["earlierAttempts"]
    assert (first["attempt"], first["status"], first["fromStep"]) == (1, "FAILED", 1)
    assert "ValueError: cannot take 3" in first["error"]
    assert [(s["name"], s["status"]) for s in first["steps"]] == [("explode", "FAILED")]
    status, answer = await api("runs", "brk-1", "retry", method="POST")
    assert status == 409 and "only a failed or cancelled run" in answer["error"]


@pytest.mark.parametrize(("workflow_id", "status"), [("dbl-1", 409), ("apr-1", 409), ("no-1", 404)])
async def test_retry_refuses_what_did_not_fail(
    api: Any, seeded: dict[str, str], workflow_id: str, status: int
) -> None:
    answer_status, answer = await api("runs", workflow_id, "retry", method="POST")
    assert answer_status == status and repr(workflow_id) in answer["error"]


async def test_fork_starts_a_new_run_from_a_step(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api(
        "runs", "dbl-1", "fork", method="POST",
        json={"fromStep": 1, "workflowId": "dbl-1-again", "input": 5},
    )  # fmt: skip
    assert (status, answer) == (201, {"workflowId": "dbl-1-again"})
    _, run = await api("runs", "dbl-1-again")
    assert (run["kind"], run["input"]) == ("doubler", 5)
    assert (run["forkedFrom"], run["fromStep"], run["attempt"]) == ("dbl-1", 1, 1)
    _, origin = await api("runs", "dbl-1")
    assert (origin["forkedFrom"], origin["fromStep"], origin["earlierAttempts"]) == (None, None, [])
    status, answer = await api("runs", "dbl-1", "fork", method="POST", json={"fromStep": 9})
    assert status == 400 and "9" in answer["error"]
    status, answer = await api("runs", "no-1", "fork", method="POST", json={"fromStep": 1})
    assert status == 404 and "'no-1'" in answer["error"]


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
