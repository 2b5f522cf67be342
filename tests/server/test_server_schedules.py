"""``GET schedules`` with their next fire time; pausing and resuming one."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from flovyn_nb import client


@pytest.fixture
def scheduled(seeded: dict[str, str], store_path: Path) -> list[str]:
    """Two schedules of the recorded ``doubler`` (written as ``fn.schedule`` does, by a
    process without the workflow's code); ``hourly`` is paused."""
    client.schedule("doubler", cron="0 6 * * *", input=2, name="nightly", store=store_path)
    client.schedule("doubler", cron="0 * * * *", input=3, name="hourly", store=store_path)
    client.pause_schedule("hourly", store=store_path)
    return ["hourly", "nightly"]


def _when(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


async def test_schedules_with_their_next_fire_time(api: Any, scheduled: list[str]) -> None:
    status, answer = await api("schedules")
    assert status == 200
    found = {s["name"]: s for s in answer["schedules"]}
    assert sorted(found) == scheduled
    nightly = found["nightly"]
    assert (nightly["workflow"], nightly["cron"], nightly["input"]) == ("doubler", "0 6 * * *", 2)
    assert (nightly["paused"], nightly["queue"], nightly["catchUp"]) == (False, "default", "none")
    assert time.time() < _when(nightly["nextFire"]) <= time.time() + 86400
    assert datetime.fromisoformat(nightly["nextFire"]).hour == 6
    assert found["hourly"]["paused"] is True and found["hourly"]["nextFire"] is None


async def test_pause_and_resume(api: Any, scheduled: list[str]) -> None:
    status, paused = await api("schedules", "nightly", "pause", method="POST")
    assert status == 200
    assert (paused["name"], paused["paused"], paused["nextFire"]) == ("nightly", True, None)
    status, resumed = await api("schedules", "hourly", "resume", method="POST")
    assert status == 200 and resumed["paused"] is False
    assert time.time() < _when(resumed["nextFire"]) <= time.time() + 3600
    _, answer = await api("schedules")
    assert {s["name"]: s["paused"] for s in answer["schedules"]} == {
        "hourly": False, "nightly": True
    }  # fmt: skip


@pytest.mark.parametrize("action", ["pause", "resume"])
async def test_an_unknown_schedule_is_404_naming_it(
    api: Any, scheduled: list[str], action: str
) -> None:
    status, answer = await api("schedules", "no-such", action, method="POST")
    assert status == 404 and "no schedule named 'no-such'" in answer["error"]
    _, after = await api("schedules")
    assert {s["name"]: s["paused"] for s in after["schedules"]} == {
        "hourly": True, "nightly": False
    }  # fmt: skip


async def test_a_cookie_pause_without_the_xsrf_token_changes_nothing(
    api: Any, jp_fetch: Any, cookie_session: Any, scheduled: list[str]
) -> None:
    session = await cookie_session()
    path = ("flovyn-nb", "api", "schedules", "nightly", "pause")
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(*path, method="POST", body="{}",
                       headers={"Authorization": "", "Cookie": session["cookie"]})  # fmt: skip
    assert refused.value.code == 403
    _, answer = await api("schedules")
    assert {s["name"]: s["paused"] for s in answer["schedules"]}["nightly"] is False
    done = await jp_fetch(*path, method="POST", body="{}", headers={
        "Authorization": "", "Cookie": session["cookie"], "X-XSRFToken": session["xsrf"]})  # fmt: skip
    assert done.code == 200


async def test_no_store_yet_no_schedules(api: Any) -> None:
    status, answer = await api("schedules")
    assert (status, answer) == (200, {"schedules": []})
    status, answer = await api("schedules", "nightly", "pause", method="POST")
    assert status == 404 and "'nightly'" in answer["error"]
