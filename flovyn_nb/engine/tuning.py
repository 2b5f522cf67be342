"""Process settings an engine changes while it runs, and restores: the garbage collector's
thresholds (and frozen objects) and the GIL's switch interval. Counted across engines, so
the last one to stop puts the old settings back."""

from __future__ import annotations

import gc
import sys
import threading

# -- garbage collector pauses -------------------------------------------------------------
#
# A full collection stops every thread, the engine loop included, for as long as it takes to
# walk every tracked object: ~15 ms for the modules a kernel has loaded before the engine
# starts (far more with pandas and friends), plus ~45 ms per 1000 live runs on this kind of
# machine. Timers and timeouts that fall in it are late by that much. While an engine runs:
# - the objects that existed when it started are moved out of the collector's sight
#   (gc.freeze): they are long-lived by then, and refcounting still frees them; cyclic
#   garbage among them is reclaimed once the last engine stops (gc.unfreeze);
# - a full collection waits for 100 collections of the middle generation instead of 10
#   (with 1000 runs waiting on 200 ms timeouts: one full collection every round or two
#   before, none in five rounds after); the younger generations are collected as usual.

_gc_engines = 0
_gc_saved_thresholds: tuple[int, int, int] | None = None
_tuning_mutex = threading.Lock()  # process settings engines change and restore
FULL_COLLECTION_EVERY = 100


def gc_tune() -> None:
    global _gc_engines, _gc_saved_thresholds
    with _tuning_mutex:
        _gc_engines += 1
        if _gc_engines == 1:
            gc.collect()
            gc.freeze()
            young, middle, old = _gc_saved_thresholds = gc.get_threshold()
            gc.set_threshold(young, middle, max(old, FULL_COLLECTION_EVERY))


def gc_untune() -> None:
    global _gc_engines, _gc_saved_thresholds
    with _tuning_mutex:
        _gc_engines -= 1
        if _gc_engines == 0:
            gc.unfreeze()
            if _gc_saved_thresholds is not None:
                gc.set_threshold(*_gc_saved_thresholds)
                _gc_saved_thresholds = None


# -- the GIL --------------------------------------------------------------------------------
#
# DuckDB lets go of the GIL several times per statement. Taking it back waits until the
# thread holding it is asked to let go, after sys.getswitchinterval() (5 ms by default). So
# while any other thread runs Python without pause (a notebook cell crunching numbers), each
# statement of the engine costs ~21 ms instead of ~0.6 ms, and a durable step ~34 ms
# (measured on a 2-core VM; at 0.5 ms: ~4 ms a step). While an engine runs, the interval is
# at most ``switch_interval``; the last engine to stop puts the old one back.

_switch_saved: list[float] = []  # the interval before each engine that shortened it


def shorten_switch_interval(interval: float) -> None:
    with _tuning_mutex:
        current = sys.getswitchinterval()
        _switch_saved.append(current)
        if interval < current:
            sys.setswitchinterval(interval)


def restore_switch_interval() -> None:
    with _tuning_mutex:
        if _switch_saved:
            previous = _switch_saved.pop()
            if not _switch_saved:
                sys.setswitchinterval(previous)
