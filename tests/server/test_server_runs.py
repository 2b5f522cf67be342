"""The runs routes: list (filters, search, sort, pages), one run, logs, cancel."""

from __future__ import annotations

from typing import Any

import pytest


async def test_the_runs_list_has_every_run_newest_first(api: Any, seeded: dict[str, str]) -> None:
    status, page = await api("runs")
    assert status == 200
    assert (page["total"], page["limit"], page["offset"]) == (4, 50, 0)
    assert page["counts"] == {"WAITING": 1, "FAILED": 1, "COMPLETED": 2}
    assert [r["workflowId"] for r in page["runs"]] == ["apr-1", "brk-1", "dbl-2", "dbl-1"]
    row = {r["workflowId"]: r for r in page["runs"]}
    assert row["apr-1"]["status"] == "WAITING"
    assert row["apr-1"]["waitingFor"] == ["approve"]
    assert row["brk-1"]["status"] == "FAILED"
    assert row["brk-1"]["error"].startswith("TaskFailed: ")
    assert "cannot take 3" in row["brk-1"]["error"] and "\n" not in row["brk-1"]["error"]
    assert row["dbl-1"]["kind"] == "doubler"
    assert row["dbl-1"]["error"] is None and row["dbl-1"]["queue"] == "default"
    assert row["dbl-1"]["waitingFor"] == []
    assert isinstance(row["dbl-1"]["durationMs"], int)
    assert row["dbl-1"]["createdAt"].endswith("+00:00")
    assert set(row["dbl-1"]) == {
        "workflowId", "executionId", "kind", "status", "createdAt", "updatedAt",
        "durationMs", "error", "waitingFor", "queue",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("params", "expected", "total"),
    [
        ({"status": "failed"}, ["brk-1"], 1),
        ({"status": "COMPLETED,waiting"}, ["apr-1", "dbl-2", "dbl-1"], 3),
        ({"kind": "doubler"}, ["dbl-2", "dbl-1"], 2),
        ({"q": "DBL"}, ["dbl-2", "dbl-1"], 2),
        ({"q": "Breaker"}, ["brk-1"], 1),  # the workflow's name
        ({"q": "dbl", "status": "completed", "kind": "breaker"}, [], 0),
        ({"sort": "workflowId"}, ["apr-1", "brk-1", "dbl-1", "dbl-2"], 4),
        ({"sort": "-workflowId"}, ["dbl-2", "dbl-1", "brk-1", "apr-1"], 4),
        ({"sort": "created"}, ["dbl-1", "dbl-2", "brk-1", "apr-1"], 4),
        ({"limit": "2", "offset": "1"}, ["brk-1", "dbl-2"], 4),
        ({"limit": "2", "offset": "3"}, ["dbl-1"], 4),
        ({"offset": "10"}, [], 4),
        ({"sort": "workflowId", "limit": "1", "offset": "1", "q": "-"}, ["brk-1"], 4),
    ],
)
async def test_filters_search_sort_and_pages(
    api: Any, seeded: dict[str, str], params: dict[str, str], expected: list[str], total: int
) -> None:
    status, page = await api("runs", params=params)
    assert status == 200
    assert [r["workflowId"] for r in page["runs"]] == expected
    assert page["total"] == total
    if params.get("status") == "failed":  # the counts ignore the status filter
        assert page["counts"] == {"WAITING": 1, "FAILED": 1, "COMPLETED": 2}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"status": "sleeping"}, "unknown status 'sleeping'"),
        ({"sort": "colour"}, "unknown sort 'colour'"),
        ({"limit": "0"}, "limit must be"),
        ({"limit": "5000"}, "limit must be"),
        ({"limit": "ten"}, "limit must be"),
        ({"offset": "-1"}, "offset must be"),
    ],
)
async def test_a_bad_query_value_is_400_naming_it(
    api: Any, seeded: dict[str, str], params: dict[str, str], named: str
) -> None:
    status, answer = await api("runs", params=params)
    assert status == 400
    assert set(answer) == {"error"}
    assert named in answer["error"]
    assert "\n" not in answer["error"]


async def test_one_run_has_its_steps_attempts_events_and_error(
    api: Any, seeded: dict[str, str]
) -> None:
    status, run = await api("runs", "brk-1")
    assert status == 200
    assert run["workflowId"] == "brk-1" and run["status"] == "FAILED"
    assert run["input"] == 3 and run["output"] is None
    assert run["error"]["type"] == "TaskFailed"
    assert "cannot take 3" in run["error"]["message"]
    assert "Traceback" in run["error"]["traceback"]
    [step] = run["steps"]
    assert (step["index"], step["name"], step["kind"], step["status"]) == (
        1, "explode", "task", "FAILED"
    )  # fmt: skip
    assert step["input"] == 3 and step["childWorkflowId"] is None
    [attempt] = step["attempts"]
    assert attempt["attempt"] == 1 and attempt["status"] == "FAILED"
    assert attempt["error"] == "ValueError: cannot take 3"
    assert step["error"] == "ValueError: cannot take 3"  # the last attempt's
    assert attempt["startedAt"] and attempt["endedAt"]
    assert run["events"][0]["type"] == "WORKFLOW_STARTED"
    assert [e["seq"] for e in run["events"]] == sorted(e["seq"] for e in run["events"])
    assert run["events"][-1]["type"] == "WORKFLOW_EXECUTION_FAILED"
    assert "source" in run  # null until the store records definitions


async def test_a_completed_and_a_waiting_run(api: Any, seeded: dict[str, str]) -> None:
    _, done = await api("runs", "dbl-1")
    assert done["output"] == 2 and done["error"] is None
    assert done["steps"][0]["output"] == 2 and done["steps"][0]["status"] == "COMPLETED"
    _, waiting = await api("runs", "apr-1")
    assert waiting["waitingFor"] == ["approve"]
    assert [(s["kind"], s["name"], s["status"]) for s in waiting["steps"]] == [
        ("promise", "approve", "PENDING")
    ]


@pytest.mark.parametrize(
    "parts", [("runs", "nope-7"), ("runs", "nope-7", "logs")], ids=["run", "logs"]
)
async def test_an_unknown_run_is_404_naming_it(
    api: Any, seeded: dict[str, str], parts: tuple[str, ...]
) -> None:
    status, answer = await api(*parts)
    assert status == 404
    assert "'nope-7'" in answer["error"]


async def test_logs_name_their_step_and_page_by_time(api: Any, seeded: dict[str, str]) -> None:
    status, logs = await api("runs", "dbl-1", "logs")
    assert status == 200
    [line] = logs["lines"]
    assert (line["step"], line["text"], line["level"]) == ("double", "doubling 1", "INFO")
    _, later = await api("runs", "dbl-1", "logs", params={"since": line["ts"]})
    assert later["lines"] == []
    _, earlier = await api("runs", "dbl-1", "logs", params={"since": "0"})
    assert earlier["lines"] == [line]
    status, answer = await api("runs", "dbl-1", "logs", params={"since": "yesterday"})
    assert status == 400 and "since must be" in answer["error"]


async def test_cancel_asks_for_it_and_refuses_an_ended_run(
    api: Any, seeded: dict[str, str]
) -> None:
    status, answer = await api("runs", "dbl-1", "cancel", method="POST", json={})
    assert status == 409 and "already ended (COMPLETED)" in answer["error"]
    status, answer = await api("runs", "apr-1", "cancel", method="POST", json={"reason": 7})
    assert status == 400 and "reason" in answer["error"]
    status, answer = await api("runs", "nope-7", "cancel", method="POST")
    assert status == 404 and "'nope-7'" in answer["error"]
    status, answer = await api("runs", "apr-1", "cancel", method="POST", json={"reason": "x"})
    assert (status, answer) == (202, {"workflowId": "apr-1", "cancelRequested": True})


async def test_a_repeated_status_means_any_of_them(api: Any, seeded: dict[str, str]) -> None:
    status, page = await api("runs", params=[("status", "failed"), ("status", "WAITING")])
    assert status == 200
    assert [r["workflowId"] for r in page["runs"]] == ["apr-1", "brk-1"]
