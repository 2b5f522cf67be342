"""Live panels for runs (usable without a kernel): run panel, dashboard, promise forms.

- ``RunPanel(workflow_id)``: a live panel of one run (an anywidget).
- ``Dashboard()`` / ``dashboard()``: all runs in the store, and pending promises.
- ``handle_mimebundle(handle, include, exclude)``: what a ``WorkflowHandle`` shows.
- ``set_mode("interactive" | "batch")``: live widgets, or static text/HTML only
  (``FLOVYN_NB_MODE`` when never called).

Modules: ``panel`` (RunPanel), ``board`` (Dashboard; a submodule named ``dashboard``
would replace the function of that name once imported), ``updater`` (the one thread that
writes traits), ``state`` (reading a run), ``timeline`` (events -> steps), ``forms`` (JSON
schema -> form -> value), ``actions`` (buttons), ``render`` (JSON, text/plain, text/html).
The widget modules load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flovyn_nb.widgets.mode import get_mode, reset_mode, set_mode

if TYPE_CHECKING:
    from flovyn_nb.widgets.board import Dashboard
    from flovyn_nb.widgets.panel import RunPanel

__all__ = [
    "Dashboard",
    "RunPanel",
    "dashboard",
    "get_mode",
    "handle_mimebundle",
    "register_display",
    "reset_mode",
    "set_mode",
]


def __getattr__(name: str) -> Any:
    if name == "RunPanel":
        from flovyn_nb.widgets.panel import RunPanel

        return RunPanel
    if name == "Dashboard":
        from flovyn_nb.widgets.board import Dashboard

        return Dashboard
    raise AttributeError(f"module 'flovyn_nb.widgets' has no attribute {name!r}")


def dashboard(**options: Any) -> Dashboard:
    """A live dashboard of all runs in the store (``fn.dashboard()``, ``%flovyn dashboard``):
    status filters, the promises waiting for input, where unclaimed runs wait, and the
    store's schedules with their next fire times and Pause / Resume buttons.

    Args:
        store: the store to show (default: the engine's, else the default store).
        limit: how many runs are listed at most (newest first).
    """
    from flovyn_nb.widgets.board import Dashboard

    return Dashboard(**options)


def register_display() -> None:
    """Make a ``WorkflowHandle`` show its run panel in notebooks (``import flovyn_nb`` and
    the kernel extension call this; the client itself imports no display code)."""
    import sys

    from flovyn_nb import client

    client.set_handle_display(handle_mimebundle)
    # In an IPython shell a handle shows as display_data with a display id (never an
    # execute_result), so that its static form can be kept current: widgets/shown.py.
    # IPython is looked up, not imported: importing flovyn_nb stays cheap elsewhere.
    ipython_module = sys.modules.get("IPython")
    shell = ipython_module.get_ipython() if ipython_module is not None else None
    if shell is not None:
        from flovyn_nb.client import WorkflowHandle
        from flovyn_nb.widgets import shown

        shell.display_formatter.ipython_display_formatter.for_type(WorkflowHandle, show_handle)
        shown.install(shell)


def show_handle(handle: Any) -> None:
    """Display a ``WorkflowHandle`` in IPython: its live panel (interactive) or its
    static form (batch), either kept current after the cell ran."""
    from flovyn_nb.widgets import shown

    store = handle.store_location
    try:
        if get_mode() == "batch":
            panel: Any = shown.StaticPanel(handle.workflow_id, store)
        else:
            from flovyn_nb.widgets.panel import panel_for

            panel = panel_for(handle.workflow_id, store=store)
    except Exception as exc:
        # A display must not raise (IPython would print a formatter traceback instead).
        from IPython.display import display

        from flovyn_nb.widgets.actions import describe

        display({"text/plain": f"{handle!r}: no panel ({describe(exc)})"}, raw=True)  # type: ignore[no-untyped-call]
        return
    shown.show(panel)


def handle_mimebundle(handle: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """The display of a ``WorkflowHandle``: its live panel plus ``text/plain`` and
    ``text/html`` (interactive), or only the static two (batch, once the run settled)."""
    from flovyn_nb.widgets.panel import filter_bundle

    store = handle.store_location
    try:
        if get_mode() == "batch":
            bundle = _static_bundle(handle.workflow_id, store)
        else:
            from flovyn_nb.widgets.panel import panel_for

            bundle = panel_for(handle.workflow_id, store=store)._bundle()
    except Exception as exc:
        # A display must not raise (IPython would print a formatter traceback instead).
        from flovyn_nb.widgets.actions import describe

        bundle = {"text/plain": f"{handle!r}: no panel ({describe(exc)})"}
    return filter_bundle(bundle, include, exclude)


def _static_bundle(workflow_id: str, store: Any) -> dict[str, Any]:
    from flovyn_nb.widgets.mode import settle_timeout
    from flovyn_nb.widgets.render import run_html, run_text
    from flovyn_nb.widgets.state import RunState, store_key, wait_settled

    state = RunState(workflow_id, store_key(store))
    view = wait_settled(state, settle_timeout())
    return {"text/plain": run_text(view), "text/html": run_html(view, state.logs)}
