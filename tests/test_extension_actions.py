"""The run view's actions in a real browser: Retry, Fork from a step, Start again; and,
in the same JupyterLab, the metrics of those runs and the sidebar's schedules.

One JupyterLab (and one engine process, see ``tests/extension_harness.py``) for the whole
story, as a user lives it: a run fails because of a bug in a task; the bug is fixed in the
engine's process (the task registered again); Retry in the run view completes the run as a
new attempt. The completed run is then forked from its second step, and started again
with an edited input, each from its dialog.

Needs the built extension (``make extension``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flovyn_nb.testing import wait_until
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


def test_retry_after_a_fix_then_fork_from_a_step_then_start_again_with_a_new_input(
    lab: Lab, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    lab.engine.ask("start ext-calc calc-1 5")
    wait_until(
        lambda: lab.api("runs/calc-1")["status"] == "FAILED",
        timeout=60,
        message="calc-1 did not fail",
    )
    page = open_lab(browser, lab, tmp_path)
    try:
        row = page.locator(".jp-FlovynRunRow[data-workflow-id='calc-1']")
        expect(row).to_have_attribute("data-status", "FAILED")
        row.click()
        view = page.locator(".jp-FlovynRunView[data-workflow-id='calc-1']")
        expect(view).to_have_attribute("data-status", "FAILED")
        expect(view.locator("details.jp-FlovynError")).to_contain_text("ZeroDivisionError")
        assert view.locator(".jp-FlovynFork").is_disabled()  # no step chosen yet

        # -- Retry, after the fix reached the engine's process ------------------------------
        assert lab.engine.ask("fix") == "fixed"
        view.locator(".jp-FlovynRetry").click()
        expect(view).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        # The same run, now in its second attempt; the failed first one is kept.
        attempts = view.locator(".jp-FlovynRunAttempts")
        expect(attempts).to_contain_text("attempt 2")
        expect(attempts.locator("[data-attempt='1']")).to_have_attribute("data-status", "FAILED")
        detail = lab.api("runs/calc-1")
        assert detail["output"] == [10, 100]
        assert detail["attempt"] == 2
        view.get_by_role("tab", name="Input / output").click()
        expect(view.locator(".jp-FlovynJson").last).to_contain_text("100")
        page.screenshot(path=str(tmp_path / "retried.png"), full_page=True)

        # -- Fork from step 2, as a new run with an id of our own -------------------------
        view.get_by_role("tab", name="Timeline").click()
        view.locator(".jp-FlovynStep[data-step='2']").click()
        fork_button = view.locator(".jp-FlovynFork")
        expect(fork_button).to_have_text("Fork from step 2")
        fork_button.click()
        dialog = page.locator(".jp-Dialog")
        dialog.get_by_label("New run id (optional)").fill("calc-1-fork")
        dialog.get_by_role("button", name="Fork").click()
        fork = page.locator(".jp-FlovynRunView[data-workflow-id='calc-1-fork']")
        expect(fork).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        expect(fork.locator(".jp-FlovynOrigin")).to_contain_text("calc-1")
        fork_row = page.locator(".jp-FlovynRunRow[data-workflow-id='calc-1-fork']")
        expect(fork_row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        forked = lab.api("runs/calc-1-fork")
        assert (forked["forkedFrom"], forked["fromStep"]) == ("calc-1", 2)
        assert forked["output"] == [10, 100]
        page.screenshot(path=str(tmp_path / "forked.png"), full_page=True)

        # -- Start again with an edited input (from the fork's view) ----------------------
        fork.locator(".jp-FlovynStartAgain").click()
        dialog = page.locator(".jp-Dialog")
        value = dialog.locator("input[id$='_value']")
        expect(value).to_have_value("5")  # the run's own input, to edit
        value.fill("20")
        dialog.get_by_label("New run id (optional)").fill("calc-again")
        dialog.get_by_role("button", name="Start").click()
        again = page.locator(".jp-FlovynRunView[data-workflow-id='calc-again']")
        expect(again).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        again_detail = lab.api("runs/calc-again")
        assert (again_detail["input"], again_detail["output"]) == (20, [40, 25])
        expect(page.locator(".jp-FlovynRunRow[data-workflow-id='calc-again']")).to_have_count(1)

        # -- Metrics: the distributions count every step of these runs --------------------
        page.evaluate("() => window.jupyterapp.commands.execute('flovyn-nb:open-metrics')")
        metrics = page.locator(".jp-FlovynMetrics")
        divide = metrics.locator(".jp-FlovynDurationRow[data-step='ext-calc/ext-divide']")
        expect(divide).to_have_attribute("data-count", "4")  # failed, retried, fork, again
        expect(metrics.locator(".jp-FlovynMetricsSummary")).to_contain_text("runs since")

        # -- Schedules: the next fire time, Pause and Resume --------------------------------
        assert (
            lab.engine.ask("schedule hourly-hello ext-hello 0 * * * *") == "scheduled hourly-hello"
        )
        sidebar = page.locator(".jp-FlovynSidebar")
        sidebar.get_by_role("button", name="Refresh").click()
        schedule = sidebar.locator(".jp-FlovynScheduleRow[data-name='hourly-hello']")
        expect(schedule).to_have_attribute("data-paused", "false")
        expect(schedule.locator(".jp-FlovynNextFire")).to_contain_text("next in ")
        expect(schedule.locator(".jp-FlovynNextFire")).to_contain_text(":00")
        schedule.get_by_role("button", name="Pause").click()
        expect(schedule).to_have_attribute("data-paused", "true")
        assert [s["paused"] for s in lab.api("schedules")["schedules"]] == [True]
        schedule.get_by_role("button", name="Resume").click()
        expect(schedule).to_have_attribute("data-paused", "false")
        page.screenshot(path=str(tmp_path / "schedules.png"), full_page=True)
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise
