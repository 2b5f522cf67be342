"""The dashboard: every run in the store, pending promises across runs, and the panel
of the run the user clicked (rendered by the same front-end code as a run panel)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from flovyn_nb import client
from flovyn_nb.model import EventType, PromiseInfo, RunInfo
from flovyn_nb.widgets import runlist, shown
from flovyn_nb.widgets.actions import Actions, describe
from flovyn_nb.widgets.forms import build_form
from flovyn_nb.widgets.panel import PanelWidget
from flovyn_nb.widgets.render import dashboard_html, dashboard_text, ms, run_json
from flovyn_nb.widgets.schedules import ScheduleButtons, schedules_json
from flovyn_nb.widgets.state import RunState, store_key
from flovyn_nb.widgets.updater import updater

JSON = Any
_LIST_EVENTS = {
    EventType.WORKFLOW_STARTED,
    EventType.WORKFLOW_COMPLETED,
    EventType.WORKFLOW_EXECUTION_FAILED,
    EventType.WORKFLOW_CANCELLED,
    EventType.CANCELLATION_REQUESTED,
    EventType.PROMISE_CREATED,
    EventType.PROMISE_RESOLVED,
    EventType.PROMISE_REJECTED,
    EventType.PROMISE_TIMEOUT,
    EventType.TIMER_STARTED,
    EventType.TIMER_FIRED,
}


class Dashboard(PanelWidget):
    """All runs in the store with status filters, pending promises with their forms, a
    click-through run panel, and the store's schedules with their next fire times.

    Args:
        store: the store to show (default: the engine's, else the default store).
        limit: runs per page (newest first by default; the store pages, sorts and
            filters, so a page costs the same at 10,000 runs); counts cover all runs.
    """

    min_interval = 0.25  # the run list is re-read at most 4 times per second

    def __init__(
        self, *, store: str | os.PathLike[str] | None = None, limit: int = runlist.PAGE_SIZE
    ) -> None:
        self.store = store_key(store)
        self.limit = limit
        self._query = runlist.first_query(max(1, min(limit, 1000)))
        self._page = client.RunPage([], 0, {})
        self._live: set[str] = set()
        self._waits: dict[str, client.QueueWait] = {}
        self._lock = threading.Lock()
        self._want: str | None = None  # the run the user clicked (main thread writes)
        self._selected: RunState | None = None  # updater thread only
        self._stale = False
        self._runs: list[RunInfo] = []
        self._promises: list[PromiseInfo] = []
        self._problem: str | None = None
        self._actions = Actions(self.store, lambda: updater().mark(self))
        self._schedules: list[client.ScheduleInfo] = []
        self._buttons = ScheduleButtons(self.store, self._reread)
        self._read_list()
        super().__init__(data=self._snapshot())
        self.on_msg(self._on_msg)
        updater().add(self)

    def _read_list(self) -> None:
        self._store_name = str(getattr(self.store, "name", self.store))  # a URL: itself
        with self._lock:
            query = self._query
        self._page = client.query_runs(
            status=list(query.statuses) or None,
            kind=query.kind,
            search=query.search,
            created_from=query.created_from,
            created_to=query.created_to,
            sort=query.sort,
            descending=query.descending,
            offset=query.offset,
            limit=query.limit,
            store=self.store,
        )
        self._runs = self._page.runs
        # Which engines live: an active run none of them owns waits for its workflow.
        self._live = client.live_engine_ids(store=self.store)
        # Where the runs no live engine holds wait: their queue, and who serves it.
        self._waits = client.queue_waits(self._runs, store=self.store)
        self._promises = client.pending_promises(store=self.store)
        self._schedules = client.list_schedules(store=self.store)

    def _reread(self) -> None:
        """The list changed in a way no run event tells (a schedule paused or resumed)."""
        self._stale = True
        updater().mark(self)

    def _snapshot(self) -> dict[str, JSON]:
        schemas = {(p.workflow_id, p.name): p.schema for p in self._promises}
        selected = self._selected
        if selected is not None and selected.view is not None:
            for step in selected.view.pending_promises:
                schemas.setdefault((selected.workflow_id, step.name), step.schema)
        self._actions.set_pending(schemas)
        forms = self._actions.forms()
        runs = self._runs
        self._text = dashboard_text(runs, self._store_name, self._schedules)
        self._html = dashboard_html(runs, self._store_name, self._schedules)
        page = self._page
        detail = None
        if selected is not None and selected.view is not None:
            detail = run_json(
                selected.view,
                selected.logs,
                forms,
                self._actions.cancel_status(selected.workflow_id),
                now=time.time(),
                check=self._actions.check_status(selected.workflow_id),
                wait=selected.queue_wait(),
            )
        return {
            "kind": "dashboard",
            "store": self._store_name,
            "now": ms(time.time()),
            "total": sum(page.counts.values()),
            "matching": page.total,
            "counts": page.counts,
            "query": runlist.query_json(self._query),
            "runs": [runlist.row_json(r, self._live, self._waits.get(r.workflow_id)) for r in runs],
            "promises": [
                {
                    "workflow_id": p.workflow_id,
                    "name": p.name,
                    "created": ms(p.created_at.timestamp()),
                    "deadline": None if p.timeout_at is None else ms(p.timeout_at.timestamp()),
                    "form": build_form(p.schema).spec(),
                    "typed": bool(p.schema),
                    "error": forms.get((p.workflow_id, p.name), {}).get("error"),
                    "fields": forms.get((p.workflow_id, p.name), {}).get("fields") or {},
                    "busy": bool(forms.get((p.workflow_id, p.name), {}).get("busy")),
                }
                for p in self._promises
            ],
            "schedules": schedules_json(self._schedules, self._buttons.states()),
            "selected": None if selected is None else selected.workflow_id,
            "detail": detail,
            "problem": self._problem,
        }

    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        if self._actions.handle(content) or self._buttons.handle(content):
            return
        if isinstance(content, dict) and content.get("action") == "query":
            with self._lock:
                self._query = runlist.next_query(self._query, content)
            self._stale = True
            updater().mark(self)
            return
        if isinstance(content, dict) and content.get("action") == "resolve_many":
            self._resolve_many(content)
            return
        if isinstance(content, dict) and content.get("action") == "select":
            target = content.get("workflow_id")
            with self._lock:
                self._want = str(target) if target else None
            updater().mark(self)

    def _resolve_many(self, content: dict[str, JSON]) -> None:
        """ "Resolve all selected" (a parameter sweep's promises): one JSON value for
        every selected promise; each one's outcome shows on its own inbox line."""
        import json

        targets = content.get("targets")
        if not isinstance(targets, list):
            return
        keys = [
            (str(t[0]), str(t[1])) for t in targets if isinstance(t, list | tuple) and len(t) == 2
        ]
        try:
            value = json.loads(str(content.get("value", "")))
        except json.JSONDecodeError as exc:
            for key in keys:
                self._actions.fail_form(key, f"the value is not JSON ({exc.msg}); e.g. true or 42")
            return
        for key in keys:
            self._actions.settle_value(key, value)

    # -- the updater's Target protocol -------------------------------------------------

    def routes(self) -> set[str] | None:
        return None

    def offer(self, what: str, execution_id: str, data: Any) -> bool:
        interesting = False
        selected = self._selected
        if selected is not None and selected.execution_id == execution_id and not selected.final:
            selected.queue.append((what, data))
            interesting = True
        if what == "finished" or (what == "event" and data.type in _LIST_EVENTS):
            self._stale = True
            interesting = True
        return interesting

    def wants_bell(self) -> bool:
        return True

    def update(self, *, bell: bool) -> None:
        if bell or self._stale:
            self._stale = False  # before reading: a change during the read marks it again
            self._read_list()
        with self._lock:
            want = self._want
        selected = self._selected
        if want is None:
            self._selected = None
        elif selected is None or selected.workflow_id != want:
            fresh = RunState(want, self.store)
            self._selected = fresh
            fresh.refresh(bell=False)
            # Events routed before the first read told the execution id are covered by
            # one more read on the next update.
            fresh.mark_reload()
            updater().mark(self)
        elif not selected.final:
            selected.refresh(bell=bell)
        self._problem = None
        self.data = self._snapshot()
        shown.changed(self)

    def fail(self, exc: BaseException) -> None:
        self._problem = f"cannot read the store: {describe(exc)}"
        self.data = {**self.data, "problem": self._problem}

    def close(self) -> None:
        updater().remove(self)
        super().close()
