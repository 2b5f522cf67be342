"""The systems the bench can measure, by name (DBOS joins here later)."""

from __future__ import annotations

from collections.abc import Callable

from bench.system import System


def _flovyn() -> System:
    from bench.systems.flovyn import FlovynSystem

    return FlovynSystem()


# Factories, so a system's heavy imports happen only when it is selected.
SYSTEMS: dict[str, Callable[[], System]] = {"flovyn_nb": _flovyn}
