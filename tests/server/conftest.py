"""Fixtures for the Jupyter server extension's tests: jupyter_server's pytest plugin
(fixtures and its runner of ``async def`` tests, for this folder only), a server with the
extension on a store of the test's own, and a store with recorded runs."""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Awaitable, Callable
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
from helper_proc import helper
from pytest_jupyter.jupyter_server import *
from tornado.httpclient import HTTPClientError, HTTPResponse
from traitlets.config import Config

Fetch = Callable[..., Awaitable[HTTPResponse]]


@pytest.fixture
def jp_server_config(store_path: Path) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"flovyn_nb": True}},
            "FlovynNb": {"store": str(store_path), "heartbeat_interval": 0.5},
        }
    )


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Runs recorded once per session by another process, whose engine has stopped since
    (the server runs none, and this process, the server's, has no workflow code): two
    completed doublers, a failed breaker, an approval waiting on its promise ``approve``.
    Each test gets a copy of the files."""
    folder = tmp_path_factory.mktemp("seeded")
    store = folder / "flovyn.duckdb"
    proc = helper(folder, "seed", str(store), "-", startup=120)
    try:
        proc.expect("seeded")
    finally:
        proc.kill()
    return store


@pytest.fixture
def seeded(seeded_template: Path, store_path: Path) -> dict[str, str]:
    """The seeded runs (see ``seeded_template``) in this test's store."""
    for suffix in ("", ".wal"):
        source = Path(f"{seeded_template}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{store_path}{suffix}")
    return {"done": "dbl-1", "failed": "brk-1", "waiting": "apr-1"}


@pytest.fixture
def api(jp_fetch: Fetch) -> Callable[..., Awaitable[tuple[int, Any]]]:
    """``await api("runs", params=..., method=..., body=...)``: (status, JSON answer),
    token-authenticated; error statuses are answers too."""

    async def call(*parts: str, **kwargs: Any) -> tuple[int, Any]:
        if "json" in kwargs:
            kwargs["body"] = json.dumps(kwargs.pop("json"))
        if kwargs.get("method") == "POST" and "body" not in kwargs:
            kwargs["body"] = ""
        try:
            response = await jp_fetch("flovyn-nb", "api", *parts, **kwargs)
        except HTTPClientError as error:
            assert error.response is not None, error
            response = error.response
        text = response.body.decode() if response.body else ""
        return response.code, json.loads(text) if text else None

    return call


@pytest.fixture
def cookie_session(jp_fetch: Fetch, jp_serverapp: Any) -> Callable[[], Awaitable[dict[str, str]]]:
    """Log in as a browser does (the login form with the token): returns the ``Cookie``
    header of the session and its XSRF token."""

    async def login() -> dict[str, str]:
        page = await jp_fetch("login", headers={"Authorization": ""})
        jar: SimpleCookie = SimpleCookie()
        for header in page.headers.get_list("Set-Cookie"):
            jar.load(header)
        xsrf = jar["_xsrf"].value
        token = jp_serverapp.identity_provider.token
        answer = await jp_fetch(
            "login",
            method="POST",
            headers={"Authorization": "", "Cookie": f"_xsrf={xsrf}"},
            body=urllib.parse.urlencode({"password": token, "_xsrf": xsrf}),
            follow_redirects=False,
            raise_error=False,
        )
        for header in answer.headers.get_list("Set-Cookie"):
            jar.load(header)
        assert len(jar) == 2, f"login failed: {answer.code}"
        return {
            "cookie": "; ".join(f"{key}={morsel.value}" for key, morsel in jar.items()),
            "xsrf": xsrf,
        }

    return login
