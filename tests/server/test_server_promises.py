"""The inbox: pending promises, resolve and reject (checked values, 404, 409)."""

from __future__ import annotations

from typing import Any

import pytest

RESOLVE = ("runs", "apr-1", "promises", "approve", "resolve")
REJECT = ("runs", "apr-1", "promises", "approve", "reject")


async def pending(api: Any) -> list[tuple[str, str]]:
    status, answer = await api("promises")
    assert status == 200
    return [(p["workflowId"], p["name"]) for p in answer["promises"]]


async def test_pending_promises_carry_their_schema(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api("promises")
    assert status == 200
    [item] = answer["promises"]
    assert item["workflowId"] == "apr-1" and item["name"] == "approve"
    assert item["schema"] == {"type": "boolean"}
    assert item["timeoutAt"] is None and item["description"] is None
    assert item["createdAt"].endswith("+00:00")


async def test_resolve_takes_the_value_once(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api(*RESOLVE, method="POST", json={"value": True})
    assert (status, answer) == (
        200,
        {"workflowId": "apr-1", "name": "approve", "status": "RESOLVED"},
    )
    assert await pending(api) == []
    status, answer = await api(*RESOLVE, method="POST", json={"value": False})
    assert status == 409 and "already resolved" in answer["error"]
    status, answer = await api(*REJECT, method="POST", json={"reason": "late"})
    assert status == 409


async def test_reject_with_a_reason(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api(*REJECT, method="POST", json={"reason": "not today"})
    assert (status, answer["status"]) == (200, "REJECTED")
    assert await pending(api) == []


@pytest.mark.parametrize(
    ("parts", "body", "named"),
    [
        (RESOLVE, {"value": "yes"}, "value for promise 'approve'"),  # the schema wants a bool
        (RESOLVE, {"answer": True}, '"value" is missing'),
        (RESOLVE, [True], "must be a JSON object"),
        (RESOLVE, "{not json", "not valid JSON"),
        (REJECT, {"reason": ["no"]}, "reason is a string"),
    ],
    ids=["wrong-type", "no-value", "not-object", "not-json", "reason-not-string"],
)
async def test_a_bad_answer_is_400_and_changes_nothing(
    api: Any, seeded: dict[str, str], parts: tuple[str, ...], body: Any, named: str
) -> None:
    raw = body if isinstance(body, str) else None
    kwargs = {"body": raw} if raw is not None else {"json": body}
    status, answer = await api(*parts, method="POST", **kwargs)
    assert status == 400
    assert named in answer["error"] and "\n" not in answer["error"]
    assert await pending(api) == [("apr-1", "approve")]


@pytest.mark.parametrize(
    ("parts", "named"),
    [
        (("runs", "nope-7", "promises", "approve", "resolve"), "'nope-7'"),
        (("runs", "apr-1", "promises", "nope", "resolve"), "'nope'"),
        (("runs", "apr-1", "promises", "nope", "reject"), "'nope'"),
    ],
)
async def test_an_unknown_run_or_promise_is_404_naming_it(
    api: Any, seeded: dict[str, str], parts: tuple[str, ...], named: str
) -> None:
    status, answer = await api(*parts, method="POST", json={"value": True, "reason": "x"})
    assert status == 404 and named in answer["error"]
    assert await pending(api) == [("apr-1", "approve")]


async def test_a_promise_of_an_ended_run_is_409(api: Any, seeded: dict[str, str]) -> None:
    status, answer = await api(
        "runs", "dbl-1", "promises", "approve", "resolve", method="POST", json={"value": 1}
    )
    assert status == 409 and "already ended (COMPLETED)" in answer["error"]
