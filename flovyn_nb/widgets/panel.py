"""The run panel: one anywidget model per run, fed by the updater thread."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from flovyn_nb import client
from flovyn_nb.widgets import shown
from flovyn_nb.widgets.actions import Actions, describe
from flovyn_nb.widgets.mode import get_mode
from flovyn_nb.widgets.render import run_html, run_json, run_text
from flovyn_nb.widgets.state import RunState, store_key
from flovyn_nb.widgets.timeline import preview
from flovyn_nb.widgets.updater import updater

JSON = Any
STATIC = Path(__file__).parent / "static"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class PanelWidget(anywidget.AnyWidget):
    """The front-end shared by run panels and the dashboard (``static/panel.js``)."""

    _esm = STATIC / "panel.js"
    _css = STATIC / "panel.css"
    data = traitlets.Dict().tag(sync=True)

    _text = ""
    _html = ""

    def __repr__(self) -> str:
        return self._text or f"<{type(self).__name__}>"

    def _bundle(self) -> dict[str, JSON]:
        bundle: dict[str, JSON] = {"text/plain": self._text, "text/html": self._html}
        if get_mode() == "interactive" and self.model_id:
            bundle[WIDGET_MIME] = {
                "version_major": 2,
                "version_minor": 1,
                "model_id": self.model_id,
            }
        return bundle

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> Any:
        return filter_bundle(self._bundle(), include, exclude)

    def _ipython_display_(self) -> None:
        # display_data with a display id (see widgets/shown.py): its static form can be
        # kept current, which an execute_result's cannot.
        shown.show(self)

    def static_signature(self) -> tuple[str, bool]:
        """(status, final) of what the static form shows (see widgets/shown.py)."""
        return "", False

    def refresh_static(self) -> None:
        """Recompute the static form from the store (kernel main thread, after a cell)."""


def filter_bundle(bundle: dict[str, JSON], include: Any, exclude: Any) -> dict[str, JSON]:
    if include:
        bundle = {k: v for k, v in bundle.items() if k in include}
    if exclude:
        bundle = {k: v for k, v in bundle.items() if k not in exclude}
    return bundle


class RunPanel(PanelWidget):
    """A live panel of one run: timeline, step logs, promise forms, countdowns, result.

    Args:
        workflow_id: the run to show (its workflow id or execution id).
        store: the store the run lives in (default: the engine's, else the default store).

    Raises:
        UnknownWorkflow: there is no such run.
    """

    min_interval = 0.1  # seconds between updates: at most 10 per second

    def __init__(self, workflow_id: str, *, store: str | os.PathLike[str] | None = None) -> None:
        key = store_key(store)
        state = RunState(workflow_id, key)
        state.refresh(bell=False)
        actions = Actions(key, self._changed, reopened=self._reopen)
        self.store = key
        self._state = state
        self._actions = actions
        self._problem: str | None = None
        # The workflow's code as the run started it: read once (a definition never changes).
        self._source = run_source(state, key)
        # A child run opened from a step's name: shown nested, under this run.
        self._child: RunPanel | None = None
        # The updater thread and the after-cell flush both read the run state.
        self._reading = threading.Lock()
        super().__init__(data=self._snapshot())
        self.on_msg(self._on_msg)
        if not state.final:
            # Marked dirty on registration: one more read covers whatever happened
            # between the first read and the listener routing this run's events here.
            state.mark_reload()
            updater().add(self)

    @property
    def workflow_id(self) -> str:
        return self._state.workflow_id

    @property
    def status(self) -> str:
        view = self._state.view
        return "" if view is None else view.status.value

    def _snapshot(self) -> dict[str, JSON]:
        view = self._state.view
        assert view is not None
        self._actions.set_pending(
            {(view.workflow_id, p.name): p.schema for p in view.pending_promises}
        )
        wait = self._state.queue_wait()
        self._text = run_text(view, wait)
        self._html = run_html(view, self._state.logs, wait)
        data = run_json(
            view,
            self._state.logs,
            self._actions.forms(),
            self._actions.cancel_status(view.workflow_id),
            now=time.time(),
            problem=self._problem,
            check=self._actions.check_status(view.workflow_id),
            again=self._actions.again_status(view.workflow_id),
            wait=wait,
        )
        info = self._state.info
        # What the run was started with, shown under its title.
        data["input"] = None if info is None else preview(info.input, 2000)
        data["events"] = events_json(self._state)
        data["source"] = self._source
        child = self._child
        data["child"] = None if child is None else child.data
        return data

    def _changed(self) -> None:
        updater().add(self) if self._state.final else updater().mark(self)

    def _reopen(self) -> None:
        """The run was retried: it changes again, so the panel follows it again."""
        self._state.final = False
        self._state.mark_reload()
        updater().add(self)

    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("action") == "select":
            self._select(content.get("workflow_id"))
            return
        child = self._child
        if (
            child is not None
            and isinstance(content, dict)
            and content.get("workflow_id") == child.workflow_id
        ):
            child._on_msg(child, content, buffers)  # the nested child's own buttons
            return
        self._actions.handle(content)

    def _select(self, workflow_id: Any) -> None:
        """Show the run ``workflow_id`` (a child's name was clicked) nested under this run,
        live (its own panel model, mirrored here); None closes it."""
        old = self._child
        if old is not None:
            old.unobserve(self._child_changed, names="data")
        self._child = None
        self._problem = None
        if isinstance(workflow_id, str) and workflow_id and workflow_id != self.workflow_id:
            try:
                child = panel_for(workflow_id, store=self.store)
            except Exception as exc:  # an unreadable child is said in the panel, not raised
                self._problem = f"cannot show run {workflow_id}: {describe(exc)}"
            else:
                child.observe(self._child_changed, names="data")
                self._child = child
        updater().add(self)

    def _child_changed(self, change: Any) -> None:
        updater().add(self)

    # -- the updater's Target protocol -------------------------------------------------

    def routes(self) -> set[str] | None:
        return {self._state.execution_id}

    def offer(self, what: str, execution_id: str, data: Any) -> bool:
        if self._state.final:
            return False
        self._state.queue.append((what, data))
        return True

    def wants_bell(self) -> bool:
        return not self._state.final

    def update(self, *, bell: bool) -> None:
        with self._reading:
            self._state.refresh(bell=bell)
            self._problem = None
            data = self._snapshot()
        if not _same_but_now(data, self.data):
            # A re-read that found nothing new (a neighbour's commit rang the bell) sends
            # nothing: the browser ticks countdowns itself, a fresh ``now`` alone is no news.
            self.data = data
        if self._state.final:
            updater().remove(self)
        shown.changed(self)

    def static_signature(self) -> tuple[str, bool]:
        return self.status, self._state.final

    def refresh_static(self) -> None:
        with self._reading:
            self._state.mark_reload()
            self._state.refresh(bell=True)
            view = self._state.view
            if view is not None:
                wait = self._state.queue_wait()
                self._text = run_text(view, wait)
                self._html = run_html(view, self._state.logs, wait)

    def fail(self, exc: BaseException) -> None:
        self._problem = f"cannot read the run: {describe(exc)}"
        self.data = {**self.data, "problem": self._problem}

    def close(self) -> None:
        # Also called from __del__, even for a panel whose __init__ failed half-way.
        updater().remove(self)
        child = getattr(self, "_child", None)
        if child is not None:
            child.unobserve(self._child_changed, names="data")
        state = getattr(self, "_state", None)
        if state is not None:
            key = (state.store, state.workflow_id)
            with _panels_lock:
                if _panels.get(key) is self:
                    del _panels[key]
        super().close()


def run_source(state: RunState, store: Path | str) -> str | None:
    """The workflow's source as the run started it (by the source hash the history fold
    found in its start), for the panel's "source" tab; None when the store has no such
    version."""
    info, view = state.info, state.view
    if info is None or view is None or not view.source_hash:
        return None
    try:
        return client.workflow_source(info.kind, view.source_hash, store=store)
    except Exception:  # the source is a courtesy: a failed read must not break the panel
        return None


EVENTS_SHOWN = 500  # the latest events the "events" tab lists (fn.get_run has them all)


def events_json(state: RunState) -> dict[str, JSON]:
    """The run's raw history for the panel's "events" tab (newest last, payloads clipped)."""
    seqs = sorted(state.events)
    shown = seqs[-EVENTS_SHOWN:]
    return {
        "total": len(seqs),
        "items": [
            {
                "seq": e.seq,
                "type": e.type,
                "ts": e.ts * 1000.0,
                "payload": preview(e.payload, 300),
            }
            for e in (state.events[seq] for seq in shown)
        ],
    }


_panels: dict[tuple[Path | str, str], RunPanel] = {}
_panels_lock = threading.Lock()


def panel_for(workflow_id: str, *, store: str | os.PathLike[str] | None = None) -> RunPanel:
    """The run's panel: displaying a handle twice shows two views of one model."""
    key = (store_key(store), workflow_id)
    with _panels_lock:
        panel = _panels.get(key)
        if panel is not None and panel.comm is not None:
            return panel
    panel = RunPanel(workflow_id, store=store)
    with _panels_lock:
        _panels[key] = panel
    return panel


def _same_but_now(new: dict[str, JSON], old: Any) -> bool:
    """Whether two snapshots differ in nothing but the time they were taken."""
    if not isinstance(old, dict) or old.keys() != new.keys():
        return False
    return all(new[key] == old[key] for key in new if key != "now")
