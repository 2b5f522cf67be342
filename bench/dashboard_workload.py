"""The dashboard at scale (issue 16): first render and a page turn with 10,000 runs in
the store, each at most 200 ms.

The store is filled directly (one commit per 500 run rows: the engine's speed is not the
question here): runs of 8 kinds, one in 7 failed with an error, 20 waiting on a promise.
Then the dashboard is built as ``fn.dashboard()`` builds it (the store query, the pending
promises, the JSON snapshot the browser gets) and its list is turned page by page,
re-sorted, filtered by status and searched, each a store query plus a snapshot, as one
click in the browser costs on the kernel side.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

from bench.system import System
from bench.workloads import Outcome, Sizes, metric

FULL_RUNS = 10_000
SMOKE_RUNS = 500
WAITING = 20


def _fill(path: Path, runs: int) -> None:
    from flovyn_nb.model import RunStatus
    from flovyn_nb.store import Change, NewPromise, NewRun, RunUpdate, open_store

    store = open_store(path)
    start = time.time() - runs * 6.0
    error = json.dumps({"type": "ValueError", "message": "row 7 is bad: " + "x" * 200})
    try:
        batch: list[Change] = []
        for i in range(runs):
            run = NewRun(
                execution_id=str(uuid.uuid4()),
                workflow_id=f"sweep-{i:06d}",
                kind=f"kind-{i % 8}",
                input_json=json.dumps({"i": i}),
                source_hash=None,
                owner=None,
                parent_id=None,
                now=start + 6.0 * i,
            )
            batch.append(Change(new_run=run))
            if i < WAITING:
                batch.append(
                    Change(
                        run_update=RunUpdate(run.execution_id, RunStatus.WAITING, run.now + 1),
                        new_promise=NewPromise(
                            promise_id=f"{run.execution_id}:approval",
                            execution_id=run.execution_id,
                            name="approval",
                            timeout_at=None,
                            schema_json=None,
                            created_at=run.now + 1,
                        ),
                    )
                )
            elif i % 7 == 0:
                update = RunUpdate(run.execution_id, RunStatus.FAILED, run.now + 3, None, error)
                batch.append(Change(run_update=update))
            else:
                update = RunUpdate(run.execution_id, RunStatus.COMPLETED, run.now + 2, "1")
                batch.append(Change(run_update=update))
            if len(batch) >= 500:
                store.commit(batch)
                batch = []
        if batch:
            store.commit(batch)
    finally:
        store.close()


def dashboard_at_scale(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    from flovyn_nb.widgets import runlist
    from flovyn_nb.widgets.board import Dashboard
    from flovyn_nb.widgets.updater import updater

    runs = FULL_RUNS if sizes.steps >= 1000 else SMOKE_RUNS
    path = workdir / "dashboard.duckdb"
    _fill(path, runs)
    first: list[float] = []
    turns: list[float] = []
    queries: dict[str, list[float]] = {"sort": [], "filter": [], "search": []}
    pages = 20 if sizes.steps >= 1000 else 5
    # Not timed: imports, the anywidget front-end files and the store's first open, which
    # a kernel has paid before its first fn.dashboard() (its engine holds the store).
    warm = Dashboard(store=path)
    updater().remove(warm)
    warm.close()
    for _ in range(sizes.repeats):
        started = time.perf_counter()
        board = Dashboard(store=path)
        first.append((time.perf_counter() - started) * 1000)
        updater().remove(board)  # driven by hand below, not by the updater thread
        assert board.data["matching"] == runs, board.data["matching"]

        def click(content: dict[str, object], board: Dashboard = board) -> float:
            began = time.perf_counter()
            board._query = runlist.next_query(board._query, content)
            board._stale = True
            board.update(bell=False)
            return (time.perf_counter() - began) * 1000

        turns.extend(click({"offset": page * runlist.PAGE_SIZE}) for page in range(1, pages + 1))
        queries["sort"].append(click({"sort": "duration", "descending": True}))
        queries["filter"].append(click({"status": "FAILED"}))
        queries["search"].append(click({"status": "ALL", "search": "sweep-0042"}))
        board.close()
    label = f"dashboard with {runs:,} runs"
    return Outcome(
        metrics=[
            metric("first_render_ms", f"{label}: first render (query + snapshot)", "ms", first),
            metric("page_turn_ms", f"{label}: next page", "ms", turns),
            metric("sort_ms", f"{label}: sort by duration", "ms", queries["sort"]),
            metric("filter_ms", f"{label}: status filter", "ms", queries["filter"]),
            metric("search_ms", f"{label}: search by id", "ms", queries["search"]),
        ],
        details={"runs": runs, "pages_turned": pages, "waiting": WAITING},
    )
