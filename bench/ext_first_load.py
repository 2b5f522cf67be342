"""The sidebar's first load in a real browser with many runs:
``python bench/ext_first_load.py [--runs 10000] [--loads 5]``.

Starts JupyterLab with the server extension and this checkout's built front end (the
harness of the browser tests, ``tests/extension_harness.py``: temporary Jupyter folders,
Debian's Chromium), has the engine process there start N runs (it keeps running and
holding the store, as a kernel does), then opens JupyterLab ``--loads`` times in fresh
tabs and measures, each time:

- ``activation_to_rows_ms``: from the extension's activation to the first page of runs on
  screen (one ``GET runs`` of 50 out of N, asked for at activation, and a render);
- ``navigation_to_rows_ms``: from the tab's navigation start (JupyterLab's whole start-up
  included) to the same moment (a first load with the browser's cache empty is reported
  apart, as ``cold_cache``; the medians are over the loads after it);
- ``get_runs_sent_ms``, ``get_runs_ms``, ``get_runs_requests``: when the first ``GET runs``
  was sent (after activation), how long it took (resource timing), and how many there
  were before the rows showed;
- ``next_page_ms``: a click on the next-page button until rows 51-100 are on screen;
- ``search_ms``: typing a run id until its one match is on screen (250 ms debounce
  included).

Prints one JSON object with every sample and the medians. ``--save FILE`` keeps the
seeded store and ``--seeded FILE`` starts from it (seeding is most of the time). Needs the built extension
(``make extension``) and /usr/bin/chromium; seeding 10,000 runs takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flovyn_nb.testing import wait_until
from tests.extension_harness import TOKEN, Lab, open_browser, start_lab

# The requests for pages of runs before the rows showed: [sent after activation, took] ms.
_REQUESTS = """() => performance.getEntriesByType('resource')
    .filter(e => e.name.includes('/flovyn-nb/api/runs?'))
    .map(e => [e.startTime - window.flovynNb.activatedAt, e.duration])"""


def one_load(browser: Any, lab: Lab, total: int, needle: str) -> dict[str, float]:
    page = browser.new_page()
    page.set_default_timeout(120_000)
    try:
        page.goto(f"{lab.url}/lab?token={TOKEN}")
        # The sidebar renders at start-up, shown or not: its first rows are the mark.
        page.wait_for_function("() => !!document.querySelector('.jp-FlovynRunRow')")
        sample = page.evaluate(
            "() => [performance.now() - window.flovynNb.activatedAt, performance.now()]"
        )
        requests = page.evaluate(_REQUESTS)
        result = {
            "activation_to_rows_ms": sample[0],
            "navigation_to_rows_ms": sample[1],
            "get_runs_sent_ms": requests[0][0],
            "get_runs_ms": requests[0][1],
            "get_runs_requests": len(requests),
        }
        page.evaluate(
            "() => window.jupyterapp.restored.then("
            "() => window.jupyterapp.commands.execute('flovyn-nb:open-sidebar'))"
        )
        label = page.locator(".jp-FlovynPagerLabel")
        label.filter(has_text=f"of {total:,}").wait_for()
        t0 = page.evaluate("() => performance.now()")
        page.locator(".jp-FlovynNext").click()
        label.filter(has_text="51\u2013100").wait_for()
        result["next_page_ms"] = page.evaluate(f"() => performance.now() - {t0}")
        t0 = page.evaluate("() => performance.now()")
        page.locator(".jp-FlovynSearch").fill(needle)
        page.locator(".jp-FlovynRunList[data-total='1']").wait_for(state="attached")
        result["search_ms"] = page.evaluate(f"() => performance.now() - {t0}")
        return result
    finally:
        page.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--save", type=Path, help="keep the seeded store here (a .duckdb file)")
    parser.add_argument("--seeded", type=Path, help="start from a store kept with --save")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="flovyn-ext-bench-") as folder:
        tmp = Path(folder)
        if args.seeded:
            for suffix in ("", ".wal"):
                if Path(f"{args.seeded}{suffix}").exists():
                    shutil.copyfile(f"{args.seeded}{suffix}", tmp / f"flovyn.duckdb{suffix}")
        with start_lab(tmp) as lab, open_browser(tmp) as browser:
            began = time.monotonic()
            if not args.seeded:
                answer = lab.engine.ask(f"many {args.runs}", timeout=3600)
                assert answer == f"many {args.runs}", answer
            seeded_s = time.monotonic() - began
            total = args.runs + 1  # and the engine's own waiting run
            wait_until(lambda: lab.api("runs")["total"] >= total, timeout=300, message="not listed")
            needle = f"bulk-{args.runs // 2:05d}"  # one run id, matched by no other
            cold = one_load(browser, lab, total, needle)  # the browser's cache still empty
            samples = [one_load(browser, lab, total, needle) for _ in range(args.loads)]
        if args.save:  # the engine has stopped: the files are whole
            for suffix in ("", ".wal"):
                if (tmp / f"flovyn.duckdb{suffix}").exists():
                    shutil.copyfile(tmp / f"flovyn.duckdb{suffix}", f"{args.save}{suffix}")
    keys = samples[0].keys()
    print(
        json.dumps(
            {
                "runs": total,
                "seeded_s": round(seeded_s, 1),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "median": {k: round(statistics.median(s[k] for s in samples)) for k in keys},
                "cold_cache": {k: round(v) for k, v in cold.items()},
                "samples": {k: [round(s[k]) for s in samples] for k in keys},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
