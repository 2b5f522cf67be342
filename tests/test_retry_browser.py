"""Issue 15 in a real browser (JupyterLab + Debian's Chromium): a run fails in a
notebook, the user fixes the cell, clicks Retry on the failed run's panel and sees it
complete. Uses the JupyterLab fixture of ``test_browser.py``."""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from test_browser import CHROMIUM, CHROMIUM_FLAGS, KERNEL_READY, TOKEN, Lab, lab  # noqa: F401

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make browser-deps)"),
]

BROKEN = """\
import flovyn_nb as fn

@fn.task(name="count-rows")
def count_rows(rows: list[int]) -> int:
    return len(rows)

@fn.workflow(name="average")
async def average(ctx: fn.WorkflowContext, rows: list[int]) -> str:
    n = await ctx.schedule(count_rows, rows)
    return f"average {sum(rows) / n}"
"""
FIXED = BROKEN.replace("sum(rows) / n}", "sum(rows) / n if n else 0.0}")


def test_fix_the_cell_then_retry_in_the_panel(lab: Lab, tmp_path: Path) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext flovyn_nb"),
        nbformat.v4.new_code_cell(BROKEN),
        nbformat.v4.new_code_cell('fn.start_workflow(average, [], workflow_id="avg-1")'),
    ]
    nbformat.write(notebook, lab.root / "retry.ipynb")
    started = time.monotonic()
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        try:
            page.set_default_timeout(30_000)
            page.goto(f"{lab.url}/lab/tree/retry.ipynb?token={TOKEN}")
            page.wait_for_function(KERNEL_READY, timeout=45_000)
            page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
            panel = page.locator(".fnb-run").first
            expect(panel).to_have_attribute("data-status", "FAILED", timeout=45_000)
            expect(panel.locator(".fnb-result")).to_contain_text("ZeroDivisionError")
            # Fix the cell that defines the workflow and run it again.
            page.evaluate(
                """(source) => {
                    const notebook = window.jupyterapp.shell.currentWidget.content;
                    notebook.widgets[1].model.sharedModel.setSource(source);
                    notebook.activeCellIndex = 1;
                    return window.jupyterapp.commands.execute('notebook:run-cell');
                }""",
                FIXED,
            )
            page.wait_for_function(KERNEL_READY, timeout=30_000)
            panel.get_by_role("button", name="Retry").click()
            expect(panel).to_have_attribute("data-status", "COMPLETED", timeout=45_000)
            expect(panel.locator(".fnb-result")).to_contain_text("average 0.0")
            expect(panel.locator(".fnb-origin")).to_contain_text("attempt 1 failed")
            expect(panel.get_by_role("button", name="Retry")).to_have_count(0)
            panel.screenshot(path=str(tmp_path / "retried.png"))
        except BaseException:
            failure = tmp_path / "failure.png"
            page.screenshot(path=str(failure), full_page=True)
            print(f"\nscreenshot of the failure: {failure}")
            raise
        finally:
            context.close()
    print(f"\nbrowser retry test: {time.monotonic() - started:.1f} s")
