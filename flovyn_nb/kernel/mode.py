"""Interactive or batch: whether panels are live widgets or static summaries.

Chosen explicitly (``%flovyn --mode batch``, ``FLOVYN_NB_MODE=batch``) or detected. There is
no official "am I under papermill" signal; what tells the cases apart (JUPYTER-FACTS.md):

- nbclient (papermill, nbval, nbconvert --execute) starts its kernels with
  ``--HistoryManager.hist_file=:memory:``;
- kernels that jupyter_server starts for JupyterLab or Notebook carry ``JPY_SESSION_NAME``;
- a terminal IPython has no kernel, hence no frontend that could show a widget.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Literal

__all__ = ["MODES", "Mode", "current_mode", "detect_mode", "parse_mode", "set_mode"]

Mode = Literal["interactive", "batch"]
MODES: tuple[Mode, ...] = ("interactive", "batch")
ENV = "FLOVYN_NB_MODE"


def parse_mode(text: str, *, source: str) -> Mode:
    """``"batch"`` or ``"interactive"`` (any case); anything else is a ``ValueError``."""
    value = text.strip().lower()
    for mode in MODES:
        if value == mode:
            return mode
    raise ValueError(f"{source} must be 'batch' or 'interactive', got {text!r}")


def detect_mode(ipython: Any) -> Mode:
    """The mode for this kernel: ``FLOVYN_NB_MODE`` if set, else what the kernel looks like.

    Raises:
        ValueError: ``FLOVYN_NB_MODE`` holds something other than batch/interactive.
    """
    explicit = os.environ.get(ENV)
    if explicit:
        return parse_mode(explicit, source=ENV)
    if getattr(ipython, "kernel", None) is None:
        return "batch"
    if os.environ.get("JPY_SESSION_NAME"):
        return "interactive"
    if _history_in_memory(ipython):
        return "batch"
    return "interactive"


def _history_in_memory(ipython: Any) -> bool:
    if any(arg.endswith("hist_file=:memory:") for arg in sys.argv):
        return True
    manager = getattr(ipython, "history_manager", None)
    return str(getattr(manager, "hist_file", "")) == ":memory:"


def current_mode() -> Mode:
    """The mode panels follow now (kept by :mod:`flovyn_nb.widgets`, which renders them)."""
    from flovyn_nb import widgets

    return widgets.get_mode()


def set_mode(mode: Mode) -> None:
    """Switch this kernel's mode; panels displayed from now on follow it."""
    from flovyn_nb import widgets

    widgets.set_mode(mode)
