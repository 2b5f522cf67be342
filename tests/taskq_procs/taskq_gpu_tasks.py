"""A worker's module with tasks only (no workflow): the steps a notebook's runs send to
its queue by name. The test process does not import this file."""

from __future__ import annotations

import os

import flovyn_nb as fn


@fn.task(name="tq-gpu-only")
def gpu_only(n: int) -> dict[str, int]:
    return {"n": n * 10, "pid": os.getpid()}
