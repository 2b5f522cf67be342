"""The IPython extension: ``%load_ext flovyn_nb`` starts the engine; ``%unload_ext``,
``%reload_ext`` and kernel shutdown stop it.

The running engine is kept in :mod:`flovyn_nb.client` (``client.current_engine()``), not
here: ``%reload_ext flovyn_nb`` re-imports the package, and whatever unload missed would
be a second engine on the same store. Unload therefore stops whatever engine the process
runs, and load never starts one while another runs.

ipykernel has no shutdown hook for extensions (IPython's events are about cells), so the
engine is stopped from ``atexit``: handlers run last-in first-out, so ours runs before the
store's own handler closes the file, and before the interpreter takes the daemon engine
thread down.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flovyn_nb import client
from flovyn_nb.definitions import registry
from flovyn_nb.errors import FlovynError

__all__ = ["load", "unload"]

# What the loaded extension must undo on unload (None while not loaded).
_unsubscribe: Callable[[], None] | None = None


def load(ipython: Any) -> None:
    """Start (or adopt) the engine, register ``%flovyn``, pick the panel mode, say where
    the store is in one line."""
    global _unsubscribe
    from IPython.core.error import UsageError

    from flovyn_nb.kernel import magics, mode, redefinition, waiting
    from flovyn_nb.widgets import register_display

    if ipython is None:
        raise UsageError("flovyn_nb: %load_ext needs an IPython shell")
    try:
        chosen = mode.detect_mode(ipython)
    except ValueError as exc:
        raise UsageError(f"flovyn_nb: {exc}") from None
    engine = client.current_engine()
    started = engine is None
    if engine is None:
        try:
            engine = client.start()
        except FlovynError as exc:
            raise UsageError(f"flovyn_nb: cannot start the engine: {exc}") from None
    try:
        atexit.register(_stop_at_exit)
        waiting.track()
        mode.set_mode(chosen)
        register_display()
        magics.register(ipython)
        if _unsubscribe is None:
            _unsubscribe = registry.subscribe(redefinition.on_registered)
    except BaseException:
        if started:  # a half-loaded extension must not leave an engine behind
            unload(ipython)
        raise
    sys.stdout.write(
        f"flovyn_nb: engine running on {_shown(engine.store_location)} ({chosen} mode)\n"
    )


def unload(ipython: Any) -> None:
    """Stop the engine (active runs stay in the store and resume with the next one)."""
    global _unsubscribe
    if _unsubscribe is not None:
        _unsubscribe()
        _unsubscribe = None
    atexit.unregister(_stop_at_exit)
    _write_summary()
    client.stop()


def _stop_at_exit() -> None:
    _write_summary()
    client.stop()


def _write_summary() -> None:
    from flovyn_nb.kernel import waiting

    if client.current_engine() is not None:
        try:
            waiting.write_batch_summary()
        except FlovynError:
            pass  # the kernel is going away; the batch runner then reports no runs


def _shown(location: str) -> str:
    """The store path relative to the working folder when it is inside it (a URL as is)."""
    if "://" in location:
        return location
    try:
        return str(Path(location).relative_to(Path.cwd().resolve()))
    except ValueError:
        return location
