"""A store that is not there yet (empty answers) and a store setting that cannot work
(one log line, then 503 with the reason on every route; never a traceback)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

BAD = {
    "a-folder": lambda tmp: str(tmp),
    "not-a-store": lambda tmp: _write(tmp / "notes.duckdb", "just some text\n" * 100),
    "unknown-url": lambda tmp: "mysql://db.example/flovyn",
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(params=["missing", *BAD])
def setting(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    kind: str = request.param
    if kind == "missing":
        return kind, str(tmp_path / "not-yet" / "flovyn.duckdb")
    return kind, BAD[kind](tmp_path)


@pytest.fixture
def jp_server_config(setting: tuple[str, str]) -> Config:
    return Config(
        {
            "ServerApp": {"jpserver_extensions": {"flovyn_nb": True}},
            "FlovynNb": {"store": setting[1]},
        }
    )


async def test_a_missing_or_bad_store(
    api: Any, jp_serverapp: Any, setting: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    kind, location = setting
    caplog.set_level(logging.INFO)
    # What a real server does once its loop runs (pytest-jupyter's server skips it).
    await jp_serverapp.extension_manager.start_all_extensions()
    answers = [
        await api("runs"),
        await api("promises"),
        await api("metrics"),
        await api("runs", "apr-1"),
        await api("runs", "apr-1", "promises", "approve", "resolve", method="POST",
                  json={"value": True}),
    ]  # fmt: skip
    if kind == "missing":
        assert answers[0] == (200, {"runs": [], "total": 0, "counts": {}, "limit": 50, "offset": 0})
        assert answers[1] == (200, {"promises": []})
        assert answers[2][0] == 200 and answers[2][1]["runsPerDay"] == []
        for status, answer in answers[3:]:
            assert status == 404 and "no store at" in answer["error"]
        assert not os.path.exists(location)  # noqa: ASYNC240  (reading never creates it)
        assert any("no store at" in r.getMessage() for r in caplog.records)
        return
    answers.append(await api("events"))  # no stream on a store that cannot be used
    for status, answer in answers:
        assert status == 503
        assert answer["error"].startswith(f"flovyn_nb: the store {location}")
        assert "cannot be used" in answer["error"] and "\n" not in answer["error"]
    records = caplog.get_records("call")
    assert not any(r.exc_info or "Traceback" in r.getMessage() for r in records)
    said = [r for r in records if "cannot be used" in r.getMessage() and r.levelname != "DEBUG"]
    assert [r.levelname for r in said] == ["ERROR"]  # one clear line, at start
