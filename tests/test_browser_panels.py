"""Panels a user keeps open all day, in a real browser (issue 16): after a kernel restart
a panel says it is disconnected and offers no dead buttons; a saved notebook reopens with
readable static panels, never "Error displaying widget: model not found".

One JupyterLab and one Chromium for the module; screenshots go to the module's temporary
folder (printed).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

WAITS = """\
import flovyn_nb as fn
from datetime import timedelta

@fn.workflow(name="needs-answer")
async def needs_answer(ctx: fn.WorkflowContext, n: int) -> str:
    answer = await ctx.promise(
        "answer", timeout=timedelta(hours=2), description="Reply **yes** to go on", default="yes"
    )
    return f"{n}: {answer}"

h = fn.start_workflow(needs_answer, 7, workflow_id="waits-7")
h
"""


# Screenshots stay after the run (pytest's own temporary folders are pruned); git ignores it.
ARTIFACTS = Path(__file__).parent / "artifacts" / "panels"


@dataclass
class Browser:
    lab: Lab
    page: Any
    folder: Path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    folder = tmp_path_factory.mktemp("panels")
    # No widget manager settings: the extension turns its saveState on, so a panel
    # reopened without its kernel renders from the saved state, disconnected.
    with start_lab(folder) as lab, sync_playwright() as pw:
        write_notebook(lab.root / "waits.ipynb", ["%load_ext flovyn_nb", WAITS])
        context = pw.chromium.launch_persistent_context(
            str(folder / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        page.set_default_timeout(30_000)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            yield Browser(lab, page, ARTIFACTS)
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            print(f"\nscreenshots in {ARTIFACTS}")
            context.close()


def _open(browser: Browser, name: str) -> None:
    # ?reset: this notebook alone on screen (not the tabs an earlier test left open).
    browser.page.goto(f"{browser.lab.url}/lab/tree/{name}?reset&token={TOKEN}")
    browser.page.wait_for_function(KERNEL_READY, timeout=45_000)


def _run_all(browser: Browser) -> None:
    browser.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")


def _save(page: Any) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
    )


def test_a_panel_says_disconnected_after_a_kernel_restart(browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.page
    _open(browser, "waits.ipynb")
    _run_all(browser)
    card = page.locator(".fnb-run .fnb-card[data-promise='answer']")
    card.wait_for(timeout=45_000)
    expect(card.get_by_role("button", name="Resolve")).to_be_enabled()
    run = page.locator(".fnb-run").first
    # No "running 7 s" beside a WAITING chip; the deadline has its date; the input shows.
    expect(run.locator(".fnb-elapsed")).to_have_text(re.compile(r"^started \d{4}-\d\d-\d\d "))
    expect(card.locator(".fnb-countdown")).to_have_text(
        re.compile(r"^times out in \d:\d\d:\d\d \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\)$")
    )
    expect(run.locator(".fnb-input")).to_have_text("input 7")
    # The promise's markdown description and default; a bad value's error beside its field.
    expect(card.locator(".fnb-markdown b")).to_have_text("yes")
    value = card.locator("textarea")
    expect(value).to_have_value('"yes"')
    value.fill("{bad")
    card.get_by_role("button", name="Resolve").click()
    expect(card.locator(".fnb-field-error")).to_contain_text("not valid JSON")
    expect(value).to_have_attribute("aria-invalid", "true")
    # Cancel asks before it cancels.
    run.get_by_role("button", name="Cancel").click()
    expect(run.locator(".fnb-confirm")).to_contain_text("Cancel this run?")
    run.get_by_role("button", name="No").click()
    expect(run.locator(".fnb-confirm")).to_have_count(0)
    expect(run).to_have_attribute("data-status", "WAITING")
    page.screenshot(path=str(browser.folder / "live.png"), full_page=True)
    _save(page)  # while the kernel lives: its widget state is saved with the notebook

    page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart()"
    )
    # The panel's output now says so, in its live view (comm gone) or its released static
    # form (the kernel replaced it on the way down); either way no action is left to click.
    output = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
    expect(output).to_contain_text("disconnected — re-run the cell", timeout=45_000)
    expect(output.locator("button:enabled, input:enabled, textarea:enabled")).to_have_count(0)
    expect(output.locator("[data-deadline]")).to_have_count(0)  # no countdown ticks on
    page.screenshot(path=str(browser.folder / "disconnected.png"), full_page=True)


def test_a_saved_notebook_reopens_with_static_panels(browser: Browser) -> None:
    from playwright.sync_api import expect

    page = browser.page
    # A new page load on the notebook saved while its kernel lived (the kernel has been
    # restarted since): no model of that kernel exists any more.
    _open(browser, "waits.ipynb")
    output = page.locator(".jp-Cell").nth(1).locator(".jp-OutputArea")
    expect(output).to_contain_text("waits-7", timeout=30_000)
    expect(output).to_contain_text("WAITING")
    expect(output).to_contain_text("disconnected — re-run the cell")
    expect(output.locator("button:enabled, input:enabled, textarea:enabled")).to_have_count(0)
    expect(page.get_by_text("model not found")).to_have_count(0)
    expect(page.get_by_text("Error displaying widget")).to_have_count(0)
    page.screenshot(path=str(browser.folder / "reopened.png"), full_page=True)


def test_the_dashboard_with_500_runs_is_paged_with_a_compact_inbox(browser: Browser) -> None:
    from playwright.sync_api import expect

    from bench.dashboard_workload import WAITING, _fill

    page = browser.page
    _fill(browser.lab.store, 500)  # 500 runs, 20 of them waiting on a promise (+ waits-7)
    write_notebook(
        browser.lab.root / "board.ipynb",
        ["%load_ext flovyn_nb", "fn = __import__('flovyn_nb')\nfn.dashboard()"],
    )
    _open(browser, "board.ipynb")
    _run_all(browser)
    board = page.locator(".fnb-dash")
    rows = board.locator(".fnb-run-row")
    try:
        board.wait_for(timeout=45_000)
        expect(rows).to_have_count(50)  # one page, not 501 rows
    except BaseException:
        page.screenshot(path=str(browser.folder / "failure.png"), full_page=True)
        raise
    # 500 runs, and waits-7 when the earlier tests of this module ran.
    expect(board.locator(".fnb-range")).to_have_text(re.compile("^1\u201350 of 50[01]$"))
    others = int(board.locator(".fnb-range").text_content().rsplit(" ", 1)[-1]) - 500
    # Newest first, with the date in the created column.
    newest = rows.evaluate_all("rows => rows.map(r => r.getAttribute('data-workflow-id'))")
    # waits-7 (an earlier test's run) may be newer than the newest sweep run.
    assert next(i for i in newest if i.startswith("sweep-")) == "sweep-000499", newest
    expect(rows.first.locator("td").nth(3)).to_have_text(
        re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$")
    )

    # The inbox: one line per waiting promise, no form until a line is opened.
    lines = board.locator(".fnb-inbox-line")
    expect(lines).to_have_count(WAITING + others)
    expect(board.locator(".fnb-inbox .fnb-card")).to_have_count(0)
    heights = lines.evaluate_all("nodes => nodes.map(n => n.getBoundingClientRect().height)")
    assert max(heights) < 40, heights
    inbox_height = board.locator(".fnb-inbox").evaluate("n => n.getBoundingClientRect().height")
    assert inbox_height < 320, inbox_height
    lines.first.locator(".fnb-inbox-open").click()
    expect(board.locator(".fnb-inbox .fnb-card")).to_have_count(1)

    first_page = rows.evaluate_all("rows => rows.map(r => r.getAttribute('data-workflow-id'))")
    first_page = [i for i in first_page if i.startswith("sweep-")]
    board.locator(".fnb-next").click()
    expect(board.locator(".fnb-range")).to_have_text(f"51\u2013100 of {500 + others}")
    # The next 50, none of the first page's (waits-7 sits among them by its start time).
    second = rows.evaluate_all("rows => rows.map(r => r.getAttribute('data-workflow-id'))")
    assert len(second) == 50 and not set(second) & set(first_page), second
    assert max(i for i in second if i.startswith("sweep-")) < min(first_page), second

    failed = 500 // 7 - WAITING // 7  # every 7th run failed, except the waiting ones
    board.locator("[data-filter='FAILED']").click()
    expect(board.locator(".fnb-range")).to_have_text(f"1\u201350 of {failed}")
    statuses = rows.locator(".fnb-chip").all_text_contents()
    assert set(statuses) == {"FAILED"}, statuses
    expect(rows.first.locator(".fnb-err-text")).to_contain_text("ValueError: row 7 is bad")

    board.locator("[data-filter='ALL']").click()
    board.locator(".fnb-search").fill("sweep-000042")
    expect(rows).to_have_count(1)
    rows.first.click()
    # The detail opens right under its row.
    detail = board.locator(
        ".fnb-run-row[data-workflow-id='sweep-000042'] + .fnb-detail-row .fnb-run"
    )
    expect(detail).to_have_attribute("data-status", "FAILED")
    board.screenshot(path=str(browser.folder / "dashboard-500.png"))


CONTRAST = """(root) => {
  // WCAG 2 contrast of every text node's colour against the background it is drawn on.
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const over = (top, bottom) => ({
    r: top.r * top.a + bottom.r * (1 - top.a), g: top.g * top.a + bottom.g * (1 - top.a),
    b: top.b * top.a + bottom.b * (1 - top.a), a: 1 });
  const background = (node) => {
    const layers = [];
    for (let n = node; n; n = n.parentElement) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c && c.a > 0) { layers.push(c); if (c.a >= 1) break; }
    }
    let colour = { r: 255, g: 255, b: 255, a: 1 };
    for (const layer of layers.reverse()) colour = over(layer, colour);
    return colour;
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const found = [];
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let t = walker.nextNode(); t; t = walker.nextNode()) {
    const el = t.parentElement;
    if (!t.textContent.trim() || !el || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || el.closest("[disabled]") || el.closest(".fnb-disconnected")) continue;
    const bg = background(el);
    const fg = over(parse(style.color) || { r: 0, g: 0, b: 0, a: 1 }, bg);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    found.push({ text: t.textContent.trim().slice(0, 40), cls: el.className, ratio: (a + 0.05) / (b + 0.05) });
  }
  return found;
}"""

SHOWCASE = """\
import flovyn_nb as fn

@fn.task(name="explode")
def explode(n: int) -> int:
    print("about to fail", n)
    raise ValueError(f"row {n} is bad")

@fn.workflow(name="breaks")
async def breaks(ctx: fn.WorkflowContext) -> int:
    return await ctx.schedule(explode, 3)

tries = []

@fn.task(name="flaky", retry_policy=fn.RetryPolicy(max_attempts=3, initial_interval=0.01))
def flaky(n: int) -> int:
    tries.append(n)
    if len(tries) == 1:
        raise ValueError("first try fails")
    return n * 10

@fn.workflow(name="retries")
async def retries(ctx: fn.WorkflowContext) -> int:
    return await ctx.schedule(flaky, 4)

retried = fn.start_workflow(retries, workflow_id="retries-1")
retried.result(timeout=60)
display(retried)

failed = fn.start_workflow(breaks, workflow_id="breaks-1")
try:
    failed.result(timeout=60)
except Exception:
    pass
failed
"""


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_every_panel_text_meets_wcag_aa_in_both_themes(browser: Browser, theme: str) -> None:
    from playwright.sync_api import expect

    page = browser.page
    name = "contrast.ipynb"
    if not (browser.lab.root / name).exists():
        write_notebook(
            browser.lab.root / name,
            [
                "%load_ext flovyn_nb",
                SHOWCASE,
                WAITS.replace("waits-7", "waits-8"),
                "fn.dashboard()",
            ],
        )
    _open(browser, name)
    page.evaluate(
        "theme => window.jupyterapp.commands.execute('apputils:change-theme', {theme})", theme
    )
    page.wait_for_function(
        "theme => document.body.dataset.jpThemeName === theme", arg=theme, timeout=30_000
    )
    _run_all(browser)
    expect(page.locator(".fnb-run[data-status='FAILED']")).to_have_count(1, timeout=45_000)
    expect(page.locator(".fnb-run .fnb-card")).to_have_count(1)
    expect(page.locator(".fnb-dash .fnb-run-row").first).to_be_visible()
    # Open the failed step's log and the dashboard's first inbox line: their text counts too.
    page.locator(".fnb-run[data-status='FAILED'] .fnb-badge").first.click()
    # A retried step shows its result and every attempt; the events tab, the raw history.
    retried = page.locator(".fnb-run[data-status='COMPLETED']").first
    expect(retried.locator(".fnb-attempt[data-attempt='1']")).to_contain_text("first try fails")
    expect(retried.locator(".fnb-step[data-kind='task'] .fnb-err-text")).to_have_count(0)
    retried.locator(".fnb-tab[data-tab='events']").click()
    expect(retried.locator(".fnb-event[data-type='TASK_RETRY_SCHEDULED']")).to_have_count(1)
    slug = theme.split()[-1].lower()
    for index, panel in enumerate(page.locator(".fnb").all()):
        panel.screenshot(path=str(browser.folder / f"theme-{slug}-{index}.png"))
    texts = page.evaluate(f"() => [...document.querySelectorAll('.fnb')].flatMap({CONTRAST})")
    assert len(texts) > 40, texts
    low = [t for t in texts if t["ratio"] < 4.5]
    assert low == [], "\n".join(f"{t['ratio']:.2f} {t['cls']}: {t['text']}" for t in low)
