"""Live panels for runs (usable without a kernel): run panel, dashboard, promise forms.

Interface used by the rest of the package (to be filled in):
- ``RunPanel(workflow_id)``: a live panel of one run.
- ``Dashboard()`` / ``dashboard()``: all runs in the store, and pending promises.
- ``handle_mimebundle(handle, include, exclude)``: what a ``WorkflowHandle`` shows.
"""

from __future__ import annotations

from typing import Any


def dashboard(**options: Any) -> Any:
    """A live dashboard of all runs in the store (``%flovyn dashboard``)."""
    raise NotImplementedError("the dashboard lands with the notebook-integration issue")


def handle_mimebundle(handle: Any, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    return {"text/plain": repr(handle)}
