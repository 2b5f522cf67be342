"""Keep the static form of every shown panel current, so that a saved notebook, its
nbconvert HTML and nbval show each run's latest state (issue 16, item 1).

A panel is displayed as ``display_data`` with a ``display_id`` (never as an
``execute_result``, which no message can update later); its bundle carries the live
widget and the static ``text/plain`` and ``text/html``. When the run changes, the static
form is replaced with ``update_display``: at once when the status changes or the run
ends, else at most every :data:`INTERVAL` seconds. The front end re-renders the widget
view then (panel.js keeps the view's own state: open logs, typed form values).

Updates sent from the updater thread reach JupyterLab, which routes them by display id;
a notebook executed by nbclient (nbconvert, papermill) only takes messages of the cell
being executed, so after every cell (IPython's ``post_run_cell``) the panels whose static
form is behind are refreshed and updated from the kernel's main thread.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any, Protocol

INTERVAL = 2.0  # seconds between static updates of a panel while its status stays the same


class Shown(Protocol):
    """What a displayed panel gives this module."""

    def _bundle(self) -> dict[str, Any]: ...

    def static_signature(self) -> tuple[str, bool]:
        """(status, final) of what the static form shows now."""

    def refresh_static(self) -> None:
        """Re-read the run and recompute the static form (kernel main thread)."""


class _Record:
    __slots__ = ("display_id", "final", "html", "last", "status")

    def __init__(self) -> None:
        self.display_id = f"flovyn-{uuid.uuid4().hex}"
        self.html = ""
        self.status = ""
        self.final = False
        self.last = 0.0


# Shown panels whose run may still change, held until their final form went out (a
# batch StaticPanel has no other owner); then they are let go.
_records: dict[Any, _Record] = {}
_lock = threading.Lock()


def show(panel: Shown) -> None:
    """Display ``panel`` (with a display id, so later updates replace its static form)."""
    from IPython.display import display

    with _lock:
        record = _records.get(panel)
        if record is None:
            record = _records[panel] = _Record()
        bundle = panel._bundle()
        _remember(record, panel, bundle)
        if record.final:  # nothing will change: no need to hold it
            del _records[panel]
    display(bundle, raw=True, display_id=record.display_id)  # type: ignore[no-untyped-call]


# The last static form of every display (display id -> text/plain, text/html), for the
# kernel's goodbye (see release): a few KB each.
_static: dict[str, tuple[str, str]] = {}

RELEASED = (
    '<div class="flovyn-disconnected" style="margin:0 0 4px;font-weight:600">'
    "disconnected — re-run the cell to see this run live again</div>"
)


def _remember(record: _Record, panel: Shown, bundle: dict[str, Any]) -> None:
    _static[record.display_id] = (
        str(bundle.get("text/plain", "")),
        str(bundle.get("text/html", "")),
    )
    record.html = str(bundle.get("text/html", ""))
    record.status, record.final = panel.static_signature()
    record.last = time.monotonic()


def changed(panel: Shown, *, force: bool = False) -> None:
    """The panel's static form may have changed: update its displays when due (any
    thread; the updater thread calls it after each update)."""
    from IPython.display import update_display

    with _lock:
        record = _records.get(panel)
        if record is None:
            return
        bundle = panel._bundle()
        status, final = panel.static_signature()
        if str(bundle.get("text/html", "")) == record.html:
            return
        due = force or final or status != record.status
        if not due and time.monotonic() - record.last < INTERVAL:
            return  # the next change, or the end of the cell, sends it
        _remember(record, panel, bundle)
        if record.final:
            del _records[panel]
    update_display(bundle, raw=True, display_id=record.display_id)  # type: ignore[no-untyped-call]


def flush() -> None:
    """Bring every shown panel's static form up to date (after each cell, on the
    kernel's main thread: nbclient keeps only the messages of the cell it runs)."""
    with _lock:
        behind = list(_records)
    for panel in behind:
        try:
            panel.refresh_static()
        except Exception:  # noqa: S112 - a panel that cannot read its run keeps its form
            continue
        changed(panel, force=True)


def release() -> None:
    """The kernel is shutting down or restarting: replace every display with its last
    static form, without the widget (whose model dies with the kernel) and marked
    disconnected. The front end then shows that instead of a dead panel, and a notebook
    saved afterwards opens with readable panels and no "model not found"."""
    from IPython.display import update_display

    try:
        flush()
    except Exception:  # noqa: S110 - the kernel is going away; the last known form stays
        pass
    with _lock:
        forms = list(_static.items())
    for display_id, (text, html) in forms:
        bundle = {"text/plain": f"[disconnected] {text}", "text/html": RELEASED + html}
        update_display(bundle, raw=True, display_id=display_id)  # type: ignore[no-untyped-call]


def install(ipython: Any) -> None:
    """Flush after every cell in this IPython shell, and release the displays when its
    kernel shuts down or restarts (once)."""
    events = ipython.events
    callbacks = events.callbacks.get("post_run_cell", [])
    if not any(getattr(cb, "__name__", "") == "_flush_after_cell" for cb in callbacks):
        events.register("post_run_cell", _flush_after_cell)
    kernel = getattr(ipython, "kernel", None)
    shutdown = getattr(kernel, "do_shutdown", None)
    if shutdown is not None and not getattr(shutdown, "_flovyn_releases", False):

        def do_shutdown(restart: bool) -> Any:
            # A shutdown_request (restart or shut down) reaches here while IOPub still
            # works, unlike atexit; a crashed kernel never does, and panel.js then marks
            # its views disconnected on its own.
            try:
                release()
            except Exception:  # noqa: S110 - never stand in the way of a shutdown
                pass
            return shutdown(restart)

        do_shutdown._flovyn_releases = True  # type: ignore[attr-defined]
        setattr(kernel, "do_shutdown", do_shutdown)  # noqa: B010 - kernel is Any | None to mypy


def _flush_after_cell(result: Any = None) -> None:
    flush()


class StaticPanel:
    """A run's static form alone (batch mode: no live widget), kept current the same way."""

    def __init__(self, workflow_id: str, store: Any) -> None:
        from flovyn_nb.widgets.mode import settle_timeout
        from flovyn_nb.widgets.state import RunState, store_key, wait_settled

        self._state = RunState(workflow_id, store_key(store))
        self._view = wait_settled(self._state, settle_timeout())

    def _bundle(self) -> dict[str, Any]:
        from flovyn_nb.widgets.render import run_html, run_text

        return {
            "text/plain": run_text(self._view),
            "text/html": run_html(self._view, self._state.logs),
        }

    def static_signature(self) -> tuple[str, bool]:
        return self._view.status.value, self._state.final

    def refresh_static(self) -> None:
        self._state.mark_reload()  # no updater feeds this state: read the store
        self._state.refresh(bell=True)
        if self._state.view is not None:
            self._view = self._state.view

    def __repr__(self) -> str:
        return str(self._bundle()["text/plain"])
