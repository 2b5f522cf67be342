"""``fn.wait_all()``: wait until this kernel's runs have nothing left to do on their own.

A run is *settled* when it completed, failed or was cancelled, or when it is suspended:
its code is blocked on a promise, a signal, a child or a task that waits for a retry, no
task attempt is running, and no timer, promise timeout or retry is due within
``timer_horizon`` seconds. That is what a batch notebook waits for before it ends: then
either everything is done, or only a human (or a much later timer) can move it on.

"This kernel's runs" are the runs this process's engine executes or executed since it was
tracked (``%load_ext flovyn_nb`` tracks it from the start): runs started here, their child
runs, and suspended runs it resumed after a restart.

Which code is blocked is engine state that lives on the engine loop, so it is read there,
in one step (``client.activity()``); deadlines come from the runs' recorded events, as
:func:`flovyn_nb.history.fold` reads them; waiting wakes on the client's change feed.
"""

from __future__ import annotations

import json
import shlex
import threading
import time
from dataclasses import dataclass
from typing import Any

from flovyn_nb import client
from flovyn_nb.client import LiveRun
from flovyn_nb.errors import EngineError, UnknownWorkflow
from flovyn_nb.history.events import events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.kernel.tables import Table, clip
from flovyn_nb.model import RunStatus

__all__ = ["RunOutcome", "RunsSummary", "track", "wait_all"]

RECHECK = 0.5  # longest wait between checks when no event arrives (code that computes)


class _Tracker:
    """Remembers the runs an engine finished; wakes waiters whenever a run records something."""

    def __init__(self, engine: client.Runtime) -> None:
        self.engine = engine
        self.changed = threading.Event()
        self._lock = threading.Lock()
        self._finished: dict[str, RunStatus] = {}
        self.subscription = client.watch(self._on_change, store=engine.store_location)

    def _on_change(self, change: client.Change) -> None:
        # Called on the engine loop (or the feed's thread): only record and signal.
        if change.what == "finished":
            with self._lock:
                self._finished[change.execution_id] = change.data
        if change.what != "log":
            self.changed.set()

    def finished(self) -> list[str]:
        """Execution ids of the runs that ended, in the order they ended."""
        with self._lock:
            return list(self._finished)


_tracker: _Tracker | None = None
_tracker_lock = threading.Lock()


def track() -> None:
    """Start tracking the running engine's runs (the extension does this right after
    starting it)."""
    engine = client.current_engine()
    if engine is not None:
        _tracker_for(engine)


def _tracker_for(engine: client.Runtime) -> _Tracker:
    global _tracker
    with _tracker_lock:
        if _tracker is None or _tracker.engine.id != engine.id:
            if _tracker is not None:
                _tracker.subscription.close()
            _tracker = _Tracker(engine)
        return _tracker


@dataclass(frozen=True)
class RunOutcome:
    """One row of a :class:`RunsSummary`."""

    workflow_id: str
    kind: str
    status: RunStatus
    detail: str


class RunsSummary:
    """What :func:`wait_all` found: one row per run, as a table in a notebook."""

    def __init__(self, runs: list[RunOutcome], store: str | None = None) -> None:
        self.runs = runs
        # The store the runs are in, when a terminal in the project would not find it by
        # itself (then the CLI hint carries --store).
        self.store = store

    def of(self, *statuses: RunStatus) -> list[RunOutcome]:
        return [run for run in self.runs if run.status in statuses]

    @property
    def completed(self) -> list[RunOutcome]:
        return self.of(RunStatus.COMPLETED)

    @property
    def failed(self) -> list[RunOutcome]:
        return self.of(RunStatus.FAILED, RunStatus.CANCELLED)

    @property
    def suspended(self) -> list[RunOutcome]:
        return [run for run in self.runs if not run.status.is_terminal]

    @property
    def all_completed(self) -> bool:
        return all(run.status is RunStatus.COMPLETED for run in self.runs)

    def table(self) -> Table:
        counts = ", ".join(
            f"{len(rows)} {label}"
            for label, rows in (
                ("completed", self.completed),
                ("failed", self.failed),
                ("suspended", self.suspended),
            )
            if rows
        )
        notes = []
        if any("promise" in run.detail for run in self.suspended):
            option = "" if self.store is None else f" --store {shlex.quote(self.store)}"
            notes.append(
                "Resolve a promise with fn.resolve_promise(ID, NAME, VALUE), "
                "%flovyn resolve ID NAME VALUE_JSON or "
                f"flovyn-nb resolve ID NAME --value VALUE_JSON{option}."
            )
        return Table(
            ["workflow_id", "kind", "status", "detail"],
            [[run.workflow_id, run.kind, run.status.value, run.detail] for run in self.runs],
            title=f"flovyn_nb: {len(self.runs)} run(s)" + (f": {counts}" if counts else ""),
            notes=notes,
            empty="no runs were started in this kernel",
        )

    def __repr__(self) -> str:
        return self.table().text()

    def _repr_html_(self) -> str:
        return self.table().html()

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.table().text())


def wait_all(timeout: float | None = None, *, timer_horizon: float = 30.0) -> RunsSummary:
    """Wait until every run of this kernel completed, failed, or is suspended.

    Suspended means waiting on a promise or signal (or a retry, timer or timeout due
    later than ``timer_horizon`` seconds from now). Returns a summary, which shows as a
    table in a notebook (``%flovyn wait`` does the same). Made for batch notebooks: it
    blocks the cell, so in an interactive kernel the panels' buttons wait until it returns.

    Raises:
        TimeoutError: some runs were still busy after ``timeout`` seconds.
        EngineError: no engine runs in this process.
    """
    engine = client.current_engine()
    if engine is None:
        raise EngineError(
            "wait_all needs the engine: run %load_ext flovyn_nb or flovyn_nb.start() first"
        )
    tracker = _tracker_for(engine)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        tracker.changed.clear()
        activity = client.activity()
        if activity is None:
            raise EngineError("the flovyn engine stopped while wait_all was waiting")
        _live, busy = _check(activity, timer_horizon)
        if not busy:
            summary = _summary(tracker, activity)
            write_batch_summary(activity)
            return summary
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(
                f"runs still busy after {timeout:g} s: "
                + ", ".join(f"{item.workflow_id} ({item.doing})" for item in busy[:5])
                + (f" and {len(busy) - 5} more" if len(busy) > 5 else "")
            )
        tracker.changed.wait(RECHECK if remaining is None else min(remaining, RECHECK))


def _check(activity: client.Activity, horizon: float) -> tuple[list[LiveRun], list[LiveRun]]:
    """(live runs, the busy ones among them)."""
    live, attempts = activity.runs, activity.task_attempts
    busy = [item for item in live if item.computing]
    if attempts:  # a task attempt runs: its run records the outcome by itself
        busy = busy or [item for item in live if "task" in item.doing] or live
    if busy or not live:
        return live, busy
    soon = client.engine_now() + horizon
    for item in live:
        try:
            events = client.get_run(item.execution_id).events
        except UnknownWorkflow:  # created a moment ago and not written yet
            return live, [item]
        # The earliest pending timer (a signal wait's timeout too), promise timeout or retry.
        due = fold(events_of(events)).next_deadline
        if due is not None and due <= soon:
            return live, [item]
    return live, []


def _summary(tracker: _Tracker, activity: client.Activity) -> RunsSummary:
    doing = {item.execution_id: item.doing for item in activity.runs}
    ids = list(dict.fromkeys([*activity.seen, *tracker.finished(), *doing]))
    infos = []
    for execution_id in ids:
        try:
            infos.append(client.get_run(execution_id, events=False))
        except UnknownWorkflow:
            continue
    infos.sort(key=lambda info: (info.created_at, info.workflow_id))
    rows = []
    for info in infos:
        if info.status is RunStatus.COMPLETED:
            detail = "output: " + clip(_json_text(info.output), 50)
        elif info.status.is_terminal:
            error = info.error
            detail = clip(f"{error.type}: {error.message}" if error else "cancelled", 70)
        else:
            detail = doing.get(info.execution_id, "owned by another process")
        # Settled and not ended is suspended, even where the row still says RUNNING (a
        # signal wait does not change the status).
        status = info.status if info.status.is_terminal else RunStatus.WAITING
        rows.append(RunOutcome(info.workflow_id, info.kind, status, detail))
    return RunsSummary(rows, _store_if_needed())


def _store_if_needed() -> str | None:
    """The engine's store, when the CLI in this project would not find it by itself
    (FLOVYN_NB_STORE or ``fn.start(store=...)`` chose another), else None."""
    engine = client.current_engine()
    if engine is None:
        return None
    found = client.discovered_store_location()
    return None if engine.store_location == found else engine.store_location


def write_batch_summary(activity: client.Activity | None = None) -> None:
    """For ``flovyn-nb run``: the runs this kernel touched, into ``$FLOVYN_NB_SUMMARY``."""
    import os
    from pathlib import Path

    from flovyn_nb import batch

    target = os.environ.get(batch.SUMMARY_ENV)
    if not target:
        return
    activity = activity if activity is not None else client.activity()
    runs = []
    for execution_id in [] if activity is None else activity.seen:
        try:
            info = client.get_run(execution_id, events=False)
        except UnknownWorkflow:
            continue
        pending = [p.name for p in client.pending_promises(info.workflow_id)]
        error = None if info.error is None else f"{info.error.type}: {info.error.message}"
        runs.append(
            batch.RunSummary(info.workflow_id, info.kind, info.status.value, error, pending)
        )
    batch.write_summary(Path(target), runs)


def _json_text(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)
