"""The dashboard lists the store's schedules: workflow, cron, queue, next fire time (a
countdown with the local time beside it in the browser, ISO in the static forms), paused
state, and Pause / Resume buttons that write the store. The browser side is panel.js in
Chromium, fed the ``data`` a real dashboard sent."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.testing import FakeClock, temporary_engine, wait_until
from flovyn_nb.widgets.board import Dashboard
from flovyn_nb.widgets.panel import STATIC, RunPanel
from tests.browser_harness import CHROMIUM, CHROMIUM_FLAGS


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    return store_target


@fn.workflow(name="ps-nightly")
async def nightly(ctx: fn.WorkflowContext, n: int) -> int:
    return n


@pytest.fixture
def board(store_path: Path | str) -> Iterator[Dashboard]:
    with temporary_engine(store=store_path):
        fn.schedule(nightly, cron="0 6 * * *", input=1, name="nightly")
        fn.schedule(nightly, cron="0 0 1 1 *", input=2, name="yearly", queue="reports")
        client.pause_schedule("yearly")
        made = Dashboard()
        try:
            yield made
        finally:
            made.close()


MINE = ("nightly", "yearly", "ps-five")  # (a decorated schedule of another test file may show too)


def _rows(board: Dashboard) -> dict[str, dict[str, Any]]:
    return {row["name"]: row for row in board.data["schedules"] if row["name"] in MINE}


def _paused() -> dict[str, bool]:
    return {s.name: s.paused for s in client.list_schedules() if s.name in MINE}


def _click(board: Dashboard, **content: Any) -> None:
    board._on_msg(board, content, [])  # what the browser's button sends


def test_the_dashboard_lists_schedules_with_their_next_fire_time(board: Dashboard) -> None:
    stored = {s.name: s for s in client.list_schedules()}
    nightly_next = stored["nightly"].next_fire
    assert nightly_next is not None and nightly_next.hour == 6 and nightly_next.minute == 0
    rows = _rows(board)
    assert rows["nightly"] == {
        "name": "nightly", "workflow": "ps-nightly", "cron": "0 6 * * *", "queue": "default",
        "paused": False, "next_fire": nightly_next.timestamp() * 1000, "last_slot": None,
        "busy": False, "error": None,
    }  # fmt: skip
    assert rows["yearly"]["paused"] and rows["yearly"]["next_fire"] is None
    assert rows["yearly"]["queue"] == "reports"
    iso = nightly_next.isoformat(timespec="seconds").replace("+00:00", "Z")
    text = repr(board)
    assert re.search(r"\nschedules \(\d+\):\n", text), text
    assert re.search(
        r"\n  nightly +ps-nightly +0 6 \* \* \* +next " + iso + "$", text, re.MULTILINE
    )
    assert re.search(r"\n  yearly +ps-nightly +0 0 1 1 \* +paused$", text, re.MULTILINE)
    page = board._repr_mimebundle_()["text/html"]
    assert 'class="flovyn-schedules"' in page and iso in page and "paused" in page


def test_pause_and_resume_buttons_write_the_store_and_show_it(board: Dashboard) -> None:
    _click(board, action="pause_schedule", name="nightly")
    wait_until(lambda: _rows(board)["nightly"]["paused"], timeout=30,
               message="the dashboard never showed the pause")  # fmt: skip
    assert _rows(board)["nightly"]["next_fire"] is None
    assert _paused() == {"nightly": True, "yearly": True}
    _click(board, action="resume_schedule", name="yearly")
    wait_until(lambda: not _rows(board)["yearly"]["paused"], timeout=30,
               message="the dashboard never showed the resume")  # fmt: skip
    yearly = _rows(board)["yearly"]
    assert yearly["next_fire"] is not None and not yearly["busy"] and yearly["error"] is None
    assert _paused() == {"nightly": True, "yearly": False}


def test_a_failed_pause_says_why_on_its_row(board: Dashboard) -> None:
    client.delete_schedule("nightly")  # gone from the store; the board has not re-read yet
    _click(board, action="pause_schedule", name="nightly")
    wait_until(lambda: board._buttons.states().get("nightly", {}).get("error"), timeout=30,
               message="the failed pause was never reported")  # fmt: skip
    assert "nightly" in board._buttons.states()["nightly"]["error"]
    wait_until(lambda: "nightly" not in _rows(board), timeout=30,
               message="the deleted schedule stayed on the board")  # fmt: skip


def test_the_next_fire_time_moves_on_when_the_engine_fires_a_slot(
    store_path: Path | str,
) -> None:
    start = datetime(2030, 1, 1, tzinfo=UTC)
    clock = FakeClock(autojump=False, start=start)
    with temporary_engine(store=store_path, clock=clock):
        fn.schedule(nightly, cron="*/5 * * * *", input=5, name="ps-five")
        board = Dashboard()
        try:
            slot = (start + timedelta(minutes=5)).timestamp() * 1000
            assert _rows(board)["ps-five"]["next_fire"] == slot
            clock.advance(timedelta(minutes=5))  # the engine fires the slot: a run starts
            after = (start + timedelta(minutes=10)).timestamp() * 1000
            wait_until(lambda: _rows(board)["ps-five"]["next_fire"] == after, timeout=30,
                       message=f"the board kept the fired slot: {_rows(board)}")  # fmt: skip
            assert _rows(board)["ps-five"]["last_slot"] == slot
        finally:
            board.close()


# -- the browser side ------------------------------------------------------------------------

# panel.js as an inline module (no server: a page's file:// import would be refused), with
# a model that records what the view sends.
HARNESS = """
window.sent = [];
window.show = (data) => {
  const el = document.createElement("div");
  document.body.append(el);
  const model = { get: () => data, on() {}, off() {}, set() {},
                  send: (msg) => window.sent.push(msg) };
  window.__panel.render({ model, el });
};
"""


@pytest.fixture
def page() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (make browser-deps)")
    from playwright.sync_api import sync_playwright

    script = (
        (STATIC / "panel.js")
        .read_text()
        .replace("export default { render };", "window.__panel = { render };")
    )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            tab = browser.new_page()
            tab.set_default_timeout(30_000)
            tab.set_content("<html><body></body></html>")
            tab.add_style_tag(content=(STATIC / "panel.css").read_text())
            tab.add_script_tag(content=script, type="module")
            tab.add_script_tag(content=HARNESS)
            tab.wait_for_function("() => window.__panel")
            yield tab
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.parametrize("store_target", ["duckdb"], indirect=True)
def test_the_browser_counts_down_to_the_next_fire_and_sends_pause(
    board: Dashboard, page: Any
) -> None:
    from playwright.sync_api import expect

    page.evaluate("data => window.show(data)", json.loads(json.dumps(board.data)))
    expect(page.locator(".fnb-schedule-row")).to_have_count(len(board.data["schedules"]))
    nightly = page.locator(".fnb-schedule-row[data-schedule='nightly']")
    expect(nightly.locator("td").nth(1)).to_have_text("ps-nightly")
    expect(nightly.locator("td").nth(2)).to_have_text("0 6 * * *")
    # Relative, then the local date and time (06:00 UTC in the browser's time zone).
    countdown = nightly.locator(".fnb-countdown")
    expect(countdown).to_have_text(
        re.compile(
            r"^in (\d+d \d+h \d\dm|\d+:\d\d:\d\d|\d+:\d\d) \(\d{4}-\d\d-\d\d \d\d:\d\d:00\)$"
        )
    )
    local = page.evaluate(
        "ms => { const d = new Date(ms); return [d.getHours(), d.getMinutes()]; }",
        _rows(board)["nightly"]["next_fire"],
    )
    assert countdown.text_content().endswith(f"{local[0]:02d}:{local[1]:02d}:00)")
    yearly = page.locator(".fnb-schedule-row[data-schedule='yearly']")
    expect(yearly.locator(".fnb-chip")).to_have_text("PAUSED")
    expect(yearly.get_by_role("button", name="Resume")).to_be_enabled()
    nightly.get_by_role("button", name="Pause").click()
    assert page.evaluate("() => window.sent") == [{"action": "pause_schedule", "name": "nightly"}]


@pytest.mark.slow
@pytest.mark.parametrize("store_target", ["duckdb"], indirect=True)
def test_the_browser_shows_where_a_run_waits(store_path: Path, page: Any) -> None:
    from playwright.sync_api import expect

    with temporary_engine(store=store_path):  # serves the default queue only
        fn.start_workflow(nightly, 3, workflow_id="ps-queued", queue="gpu")
        panel = RunPanel("ps-queued")
        try:
            data = json.loads(json.dumps(panel.data))
        finally:
            panel.close()
    page.evaluate("data => window.show(data)", data)
    line = page.locator(".fnb-run .fnb-queue")
    expect(line).to_have_text(re.compile(r"^waiting in queue 'gpu' — no engine serves it"))
    expect(line).to_contain_text("flovyn-nb worker MODULE --queue gpu")
    expect(line).to_have_class(re.compile(r"\bfnb-unserved\b"))
