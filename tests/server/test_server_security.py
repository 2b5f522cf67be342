"""Every route needs Jupyter's authentication; writes by cookie need the XSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

from flovyn_nb.server.handlers import ROUTES

# A concrete URL and method for every route of the API.
SAMPLES = {
    "/runs": "GET runs",
    "/runs/{workflowId}": "GET runs/apr-1",
    "/runs/{workflowId}/logs": "GET runs/apr-1/logs",
    "/runs/{workflowId}/cancel": "POST runs/apr-1/cancel",
    "/runs/{workflowId}/retry": "POST runs/apr-1/retry",
    "/runs/{workflowId}/fork": "POST runs/apr-1/fork",
    "/promises": "GET promises",
    "/runs/{workflowId}/promises/{name}/resolve": "POST runs/apr-1/promises/approve/resolve",
    "/runs/{workflowId}/promises/{name}/reject": "POST runs/apr-1/promises/approve/reject",
    "/workflows": "GET workflows",
    "/workflows/{name}/start": "POST workflows/approval/start",
    "/metrics": "GET metrics",
    "/schedules": "GET schedules",
    "/schedules/{name}/pause": "POST schedules/nightly/pause",
    "/schedules/{name}/resume": "POST schedules/nightly/resume",
    "/events": "GET events",
    "/openapi.json": "GET openapi.json",
}


def test_every_route_has_a_sample() -> None:
    assert sorted(SAMPLES) == sorted(r.template for r in ROUTES)


@pytest.mark.parametrize("template", sorted(SAMPLES))
async def test_no_token_no_answer(jp_fetch: Any, seeded: dict[str, str], template: str) -> None:
    method, path = SAMPLES[template].split(" ")
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(
            "flovyn-nb",
            "api",
            *path.split("/"),
            method=method,
            headers={"Authorization": ""},
            body='{"value": true}' if method == "POST" else None,
        )
    assert refused.value.code == 403


async def test_a_cookie_write_needs_the_xsrf_token(
    api: Any, jp_fetch: Any, cookie_session: Any, seeded: dict[str, str]
) -> None:
    session = await cookie_session()
    path = ("flovyn-nb", "api", "runs", "apr-1", "promises", "approve", "resolve")
    body = '{"value": true}'
    # The cookie alone reads...
    read = await jp_fetch(
        "flovyn-nb", "api", "runs", headers={"Authorization": "", "Cookie": session["cookie"]}
    )
    assert read.code == 200
    # ...but does not write without the XSRF token, and nothing changes.
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch(*path, method="POST", body=body,
                       headers={"Authorization": "", "Cookie": session["cookie"]})  # fmt: skip
    assert refused.value.code == 403
    _, answer = await api("promises")
    assert [p["name"] for p in answer["promises"]] == ["approve"]
    # With it (the header JupyterLab sends), the write goes through.
    done = await jp_fetch(*path, method="POST", body=body, headers={
        "Authorization": "", "Cookie": session["cookie"], "X-XSRFToken": session["xsrf"]})  # fmt: skip
    assert done.code == 200
    _, answer = await api("promises")
    assert answer["promises"] == []


@pytest.mark.parametrize("template", sorted(t for t, s in SAMPLES.items() if s.startswith("POST")))
async def test_no_cookie_write_without_the_xsrf_token(
    jp_fetch: Any, cookie_session: Any, seeded: dict[str, str], template: str
) -> None:
    session = await cookie_session()
    path = SAMPLES[template].split(" ")[1]
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("flovyn-nb", "api", *path.split("/"), method="POST",
                       body='{"value": true, "fromStep": 1}',
                       headers={"Authorization": "", "Cookie": session["cookie"]})  # fmt: skip
    assert refused.value.code == 403
