"""The JupyterLab extension (``extension/``, built into ``flovyn_nb/labextension/``) in a
real browser against the real server extension (``flovyn_nb/server/``).

Headless Debian Chromium (never a downloaded one) drives JupyterLab started on 127.0.0.1
with a token and temporary Jupyter folders. Runs come from another process: an engine
(``tests/extension_harness.py``) that registers the workflows, starts a run waiting on a
promise, and starts more when the test writes commands on its stdin.

Needs the built extension (``make extension``). The sidebar's first load with 10,000 runs
is measured by ``bench/ext_first_load.py`` (same harness).
"""

from __future__ import annotations

import urllib.error
from pathlib import Path
from typing import Any

import pytest

from tests.extension_harness import (  # noqa: F401 (the fixtures are used by name)
    CHROMIUM,
    Lab,
    browser_fixture,
    lab_fixture,
    open_lab,
    shoot_on_failure,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make browser-deps)"),
]


def test_answer_a_promise_of_another_process_from_the_inbox(
    lab: Lab, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_lab(browser, lab, tmp_path)
    try:
        sidebar = page.locator(".jp-FlovynSidebar")
        row = sidebar.locator(".jp-FlovynRunRow[data-workflow-id='ext-order-1']")
        expect(row).to_have_attribute("data-status", "WAITING")
        expect(row.locator(".jp-FlovynWaiting")).to_contain_text("approval")

        item = sidebar.locator(".jp-FlovynInboxItem[data-workflow-id='ext-order-1']")
        expect(item).to_have_attribute("data-promise", "approval")
        item.get_by_role("button", name="Answer").click()
        # A value the schema refuses: the message shows, nothing is sent, the run waits.
        item.locator("input[id$='_approved']").check()
        item.locator("input[id$='_amount']").fill("0")
        item.get_by_role("button", name="Resolve").click()
        expect(item.locator(".jp-FlovynError")).to_contain_text("must be >= 1")
        expect(row).to_have_attribute("data-status", "WAITING")
        page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)

        item.locator("input[id$='_amount']").fill("3")
        item.get_by_role("button", name="Resolve").click()
        # The engine in the other process completes the run; the feed brings it here.
        expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        expect(item).to_have_count(0)

        row.click()
        view = page.locator(".jp-FlovynRunView[data-workflow-id='ext-order-1']")
        expect(view).to_have_attribute("data-status", "COMPLETED")
        view.get_by_role("tab", name="Input / output").click()
        expect(view.locator(".jp-FlovynJson").last).to_contain_text("approved=True amount=3")
        view.get_by_role("tab", name="Timeline").click()
        expect(view.locator(".jp-FlovynStep")).not_to_have_count(0)
        page.screenshot(path=str(tmp_path / "run-view.png"), full_page=True)

        # Metrics: the finished run is counted in the plots.
        page.evaluate("() => window.jupyterapp.commands.execute('flovyn-nb:open-metrics')")
        metrics = page.locator(".jp-FlovynMetrics")
        expect(metrics.locator(".jp-FlovynPlot")).not_to_have_count(0)
        page.screenshot(path=str(tmp_path / "metrics.png"), full_page=True)
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise


def test_start_a_workflow_from_its_form(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    try:
        lab.api("workflows")
    except urllib.error.HTTPError as error:
        error.close()
        if error.code != 501:
            raise
        pytest.skip("the server has no definitions registry yet (GET workflows: 501)")
    page = open_lab(browser, lab, tmp_path)
    try:
        page.locator(".jp-FlovynStartButton").click()
        panel = page.locator(".jp-FlovynStart")
        panel.locator(".jp-FlovynWorkflowPick").select_option("ext-hello")
        panel.locator("input[id$='_value']").fill("browser")
        panel.locator(".jp-FlovynStartId").fill("hello-from-form")
        panel.get_by_role("button", name="Start", exact=True).click()
        view = page.locator(".jp-FlovynRunView[data-workflow-id='hello-from-form']")
        expect(view).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        view.get_by_role("tab", name="Input / output").click()
        expect(view.locator(".jp-FlovynJson").last).to_contain_text("hello browser")
        row = page.locator(".jp-FlovynRunRow[data-workflow-id='hello-from-form']")
        expect(row).to_have_attribute("data-status", "COMPLETED")
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise


def test_notification_when_a_promise_starts_waiting(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = open_lab(browser, lab, tmp_path)
    try:
        page.wait_for_function("() => window.flovynNb.feed.state === 'open'")
        # Record when the new run's row reaches the screen (change-to-screen latency).
        page.evaluate(
            """() => {
                window.__seen = {};
                window.__fed = {};
                window.flovynNb.feed.subscribe(e => {
                    if (e.workflowId && !(e.workflowId in window.__fed)) {
                        window.__fed[e.workflowId] = Date.now();
                    }
                });
                new MutationObserver(() => {
                    for (const row of document.querySelectorAll('.jp-FlovynRunRow')) {
                        const id = row.dataset.workflowId;
                        if (!(id in window.__seen)) window.__seen[id] = Date.now();
                    }
                }).observe(document.body, {childList: true, subtree: true});
            }"""
        )
        answer = lab.engine.ask('start ext-confirm confirm-1 "crate"')
        started_at = float(answer.split()[2])
        toast = page.locator(".Toastify__toast", has_text="confirm-1")
        expect(toast).to_contain_text('"confirm"', timeout=30_000)
        expect(toast.get_by_role("button", name="Open")).to_be_visible()
        page.wait_for_function("() => 'confirm-1' in window.__seen")
        seen_ms = page.evaluate("() => window.__seen['confirm-1']")
        fed_ms = page.evaluate("() => window.__fed['confirm-1']")
        page.screenshot(path=str(tmp_path / "notification.png"), full_page=True)
        toast.get_by_role("button", name="Yes").click()
        row = page.locator(".jp-FlovynRunRow[data-workflow-id='confirm-1']")
        expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        assert lab.api("runs/confirm-1")["output"] == "crate: True"
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise
    print(
        f"\nlive feed, run started in another process → row on screen: "
        f"{seen_ms - started_at * 1000:.0f} ms (feed event in the browser after "
        f"{fed_ms - started_at * 1000:.0f} ms)"
    )


def test_bulk_resolve_the_selected_promises(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    for n in (1, 2):
        lab.engine.ask(f'start ext-confirm bulk-confirm-{n} "box {n}"')
    page = open_lab(browser, lab, tmp_path)
    try:
        inbox = page.locator(".jp-FlovynInbox")
        for n in (1, 2):
            item = inbox.locator(f".jp-FlovynInboxItem[data-workflow-id='bulk-confirm-{n}']")
            item.get_by_role("checkbox").check()
        bulk = inbox.locator(".jp-FlovynBulk")
        bulk.locator("input[type='checkbox'][id$='_value']").check()
        bulk.get_by_role("button", name="Resolve 2 selected").click()
        for n in (1, 2):
            row = page.locator(f".jp-FlovynRunRow[data-workflow-id='bulk-confirm-{n}']")
            expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        expect(inbox.locator(".jp-FlovynInboxItem[data-workflow-id^='bulk-']")).to_have_count(0)
        assert lab.api("runs/bulk-confirm-2")["output"] == "box 2: True"
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise
