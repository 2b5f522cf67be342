"""Change → screen in JupyterLab's sidebar: ``python bench/feed_screen.py [--runs N]``.

Records N runs (default 10,000) in a fresh store, starts JupyterLab on it (the extension
as the test harness installs it, ``tests/browser_harness.py``) and headless Chromium
with the flovyn sidebar open. Then this process plays a kernel: an engine on the store
starts a run, S times (``--samples``, default 20), a second apart. For each it measures,
from the ``start_workflow`` call (wall clock, the browser's too):

- ``change_to_sse``: the live feed's first message naming the run reaches the page;
- ``change_to_screen``: its row is in the sidebar's DOM (put there from the message;
  the sidebar also re-reads its page of runs); ``of_which_get_runs``: that re-read's own
  duration (it no longer delays the row).

Prints one JSON object (median, p90, max in ms). Not part of ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from browser_harness import CHROMIUM, CHROMIUM_FLAGS, TOKEN, start_lab

import flovyn_nb as fn

# In the page: when the feed first named a run, and when its row first appeared.
WATCH = """() => {
    window.__fnbSse = {};
    window.__fnbRow = {};
    const now = () => performance.timeOrigin + performance.now();
    window.flovynNb.feed.subscribe(e => {
        if (e.workflowId && !(e.workflowId in window.__fnbSse)) {
            window.__fnbSse[e.workflowId] = now();
        }
    });
    const look = () => {
        for (const row of document.querySelectorAll('.jp-FlovynRunRow[data-workflow-id]')) {
            const id = row.getAttribute('data-workflow-id');
            if (!(id in window.__fnbRow)) { window.__fnbRow[id] = now(); }
        }
    };
    new MutationObserver(look).observe(document.body, {subtree: true, childList: true});
}"""


# How long the first GET runs the page sent after the message at ``at`` took (ms; -1: none).
REQUEST = """at => {
    const origin = performance.timeOrigin;
    const r = performance.getEntriesByType('resource').find(
        e => e.name.includes('/flovyn-nb/api/runs?') && origin + e.startTime >= at);
    return r ? r.responseEnd - r.startTime : -1;
}"""


@fn.workflow(name="bench-screen-noop")
def noop(ctx: fn.WorkflowContext, x: int) -> int:
    return x


def record(store: Path, n: int) -> None:
    with fn.start(store=store):
        handles = [fn.start_workflow(noop, i, workflow_id=f"run-{i:05d}") for i in range(n)]
        for handle in handles:
            handle.result(timeout=600)


def summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p90_ms": round(samples[int(0.9 * (len(samples) - 1))], 1),
        "max_ms": round(samples[-1], 1),
    }


def measure(page: Any, store: Path, samples: int) -> dict[str, Any]:
    page.evaluate(WATCH)
    sse: list[float] = []
    screen: list[float] = []
    gets: list[float] = []
    with fn.start(store=store):
        for i in range(samples):
            wid = f"screen-{i}"
            started = time.time() * 1000
            fn.start_workflow(noop, i, workflow_id=wid).result(timeout=60)
            page.wait_for_function(
                f"() => {json.dumps(wid)} in window.__fnbRow && {json.dumps(wid)} in window.__fnbSse",
                timeout=60_000,
            )
            got = page.evaluate(
                f"() => [window.__fnbSse[{json.dumps(wid)}], window.__fnbRow[{json.dumps(wid)}]]"
            )
            sse.append(got[0] - started)
            screen.append(got[1] - started)
            # The sidebar's request for its page of runs after the message (resource timing):
            # the row now shows from the message itself, before that request has ended.
            page.wait_for_function(f"() => ({REQUEST})({got[0]}) >= 0", timeout=60_000)
            gets.append(page.evaluate(REQUEST, got[0]))
            time.sleep(1.0)  # samples apart: every process lets go of the file meanwhile
    return {
        "change_to_sse": summary(sse),
        "change_to_screen": summary(screen),
        "of_which_get_runs": summary([g for g in gets if g >= 0]),
    }


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flovyn-feed-screen-") as name:
        folder = Path(name)
        store = folder / "flovyn.duckdb"
        record(store, args.runs)
        with start_lab(folder) as lab, sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                str(folder / "chromium-profile"),
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 1400, "height": 900},
            )
            try:
                page = context.new_page()
                page.set_default_timeout(60_000)
                page.goto(f"{lab.url}/lab?token={TOKEN}")
                page.wait_for_function("() => !!(window.jupyterapp && window.flovynNb)")
                page.evaluate(
                    "() => window.jupyterapp.restored.then("
                    "() => window.jupyterapp.commands.execute('flovyn-nb:open-sidebar'))"
                )
                page.locator(".jp-FlovynSidebar .jp-FlovynRunList[data-total]").wait_for(
                    state="attached"
                )
                page.wait_for_function(
                    "() => window.flovynNb.feed.state === 'open'", timeout=60_000
                )
                time.sleep(2.0)  # the feed read its baseline
                result = {"runs": args.runs, **measure(page, store, args.samples)}
            finally:
                context.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
