"""The IPython extension (``%load_ext flovyn_nb``); filled in by the notebook issue."""

from __future__ import annotations

from typing import Any


def load(ipython: Any) -> None:
    raise NotImplementedError("the kernel extension lands with the notebook-integration issue")


def unload(ipython: Any) -> None:
    return None
