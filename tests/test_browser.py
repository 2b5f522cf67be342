"""A real browser: JupyterLab, headless Chromium (Debian's, never a downloaded one), a
notebook that starts a run, a promise form filled and resolved in the rendered panel.

Needs ``/usr/bin/chromium`` (``make browser-deps`` installs it). The server runs on
127.0.0.1 with a fixed token, and every Jupyter folder (config, data, runtime, settings,
workspaces) is a temporary one, so the test neither sees nor changes the user's setup.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser_harness import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    KERNEL_READY,
    TOKEN,
    Lab,
    start_lab,
    write_notebook,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make browser-deps)"),
]

DEFINITIONS = """\
import pydantic
import flovyn_nb as fn

class Decision(pydantic.BaseModel):
    approved: bool
    amount: int = pydantic.Field(ge=1, description="units to order")
    comment: str = ""

@fn.task(name="count-rows")
def count_rows(table: str) -> int:
    print("counting", table)
    return 42

@fn.workflow(name="order-approval")
async def order_approval(ctx: fn.WorkflowContext, table: str) -> str:
    rows = await ctx.schedule(count_rows, table)
    ctx.logger.info("%d rows to approve", rows)
    decision = await ctx.promise("approval", timeout=3600, type_hint=Decision)
    return f"{type(decision).__name__}: approved={decision.approved} amount={decision.amount}"
"""


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with start_lab(tmp_path) as started:
        write_notebook(
            started.root / "approval.ipynb",
            [
                "%load_ext flovyn_nb",
                DEFINITIONS,
                'h = fn.start_workflow(order_approval, "orders", workflow_id="order-42")\nh',
                "fn.dashboard()",
            ],
        )
        yield started


def test_resolve_a_promise_in_the_rendered_panel(lab: Lab, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    started = time.monotonic()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab/tree/approval.ipynb?token={TOKEN}")
            # Run the cells once the notebook's session is ready with an idle kernel
            # (before that, JupyterLab may drop the request or ask which kernel to use).
            page.wait_for_function(KERNEL_READY, timeout=45_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")

            panel = page.locator(".fnb-run").first  # the run's own panel (cell 3)
            board = page.locator(".fnb-dash")
            card = panel.locator(".fnb-card[data-promise='approval']")
            card.wait_for(timeout=45_000)
            expect(
                panel.locator(".fnb-step[data-kind='task'][data-status='COMPLETED']")
            ).to_have_count(1)

            # A bad value: the error shows next to the form and the run keeps waiting.
            card.locator("[data-path='/approved']").check()
            card.locator("[data-path='/amount']").fill("0")
            card.get_by_role("button", name="Resolve").click()
            expect(card.locator(".fnb-form-error")).to_contain_text("greater than or equal to 1")
            expect(panel).to_have_attribute("data-status", "WAITING")
            # The countdown ticks in the browser (the kernel sent the deadline once).
            countdown = card.locator(".fnb-countdown")
            expect(countdown).to_have_text(re.compile(r"times out in (1:00:00|59:\d\d)"))
            expect(countdown).not_to_have_text(countdown.text_content() or "")
            page.screenshot(path=str(tmp_path / "panel-waiting.png"), full_page=True)

            card.locator("[data-path='/amount']").fill("3")
            card.locator("[data-path='/comment']").fill("ship it")
            card.get_by_role("button", name="Resolve").click()
            expect(panel).to_have_attribute("data-status", "COMPLETED", timeout=20_000)
            expect(panel.locator(".fnb-status")).to_have_text("COMPLETED")
            expect(panel.locator(".fnb-result")).to_contain_text("Decision: approved=True amount=3")
            expect(panel.locator(".fnb-card")).to_have_count(0)
            expect(
                panel.locator(".fnb-step[data-kind='promise'][data-status='RESOLVED']")
            ).to_have_count(1)
            # Expand the task's log from its badge in the timeline.
            panel.locator(".fnb-badge").first.click()
            expect(panel.locator(".fnb-log-box.fnb-open")).to_contain_text("counting orders")
            shot = tmp_path / "panel-completed.png"
            panel.screenshot(path=str(shot))

            # The dashboard followed along; clicking the run opens its panel there.
            expect(
                board.locator(".fnb-run-row[data-workflow-id='order-42'] .fnb-chip")
            ).to_have_text("COMPLETED")
            expect(board.locator(".fnb-card")).to_have_count(0)
            board.locator(".fnb-run-row[data-workflow-id='order-42']").click()
            expect(board.locator(".fnb-detail .fnb-run")).to_have_attribute(
                "data-status", "COMPLETED"
            )
            board.screenshot(path=str(tmp_path / "dashboard.png"))
            page.screenshot(path=str(tmp_path / "page-completed.png"), full_page=True)
        except BaseException:
            failure = tmp_path / "failure.png"
            page.screenshot(path=str(failure), full_page=True)
            print(f"\nscreenshot of the failure: {failure}")
            raise
        finally:
            context.close()
    print(f"\nbrowser test: {time.monotonic() - started:.1f} s; screenshot: {shot}")
    others = ", ".join(str(tmp_path / n) for n in ("panel-waiting.png", "dashboard.png"))
    print(f"also: {others}")
