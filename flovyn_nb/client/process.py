"""This process's engine and the stores it reads: the state every door function shares.

One engine per process (``start``/``stop``); query handles on other stores are opened
once and cached; a URL's password is kept here only (``store_target``), never shown.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable
from typing import Any

from flovyn_nb.engine.clock import Clock
from flovyn_nb.engine.engine import Engine
from flovyn_nb.errors import EngineError
from flovyn_nb.feed import Feed
from flovyn_nb.runtime import Runtime
from flovyn_nb.store import Store, default_store_path, is_url, location_of, open_store

__all__ = [
    "change_feed", "current", "current_engine", "engine_on", "inbox_write", "require_engine",
    "running_engine", "start", "stop", "store_for", "store_location", "store_target",
]  # fmt: skip

_lock = threading.Lock()
_engine: Engine | None = None
_runtime: Runtime | None = None
_feed: Feed | None = None  # the change feed, made on the first watch()
_stores: dict[str, Store] = {}
_targets: dict[str, str] = {}  # store location -> the URL (with its password) that opens it


def start(
    store: str | os.PathLike[str] | None = None,
    *,
    clock: Clock | None = None,
    **options: Any,
) -> Runtime:
    """Start this process's engine on a store file (default: ``FLOVYN_NB_STORE``, else the
    store ``store.discover_store`` finds from the working folder) and resume the runs it can.

    Returns a :class:`~flovyn_nb.runtime.Runtime` (store location, ``running``, ``stop()``),
    which is also a context manager (``with fn.start(...):``).

    Raises:
        EngineError: an engine is already running in this process.
        StoreError / StoreLocked: the store cannot be used.
    """
    global _engine, _runtime
    with _lock:
        if _engine is not None and _engine.running:
            raise EngineError(
                f"an engine is already running on {_engine.store.location}; "
                "call flovyn_nb.stop() first"
            )
        engine = Engine(store_target(store), clock=clock, **options)
        engine.start()
        _engine = engine
        runtime = _runtime = Runtime(engine, _stop_engine)
    if _feed is not None:  # subscribers hear of its runs from now on
        _feed.nudge()
    return runtime


def stop() -> None:
    """Stop the engine; active runs stay in the store and resume with the next one."""
    global _engine, _runtime
    with _lock:
        engine, _engine, _runtime = _engine, None, None
    if engine is not None:
        engine.stop()


def _stop_engine(engine: Engine) -> None:
    global _engine, _runtime
    with _lock:
        if _engine is engine:
            _engine, _runtime = None, None
    engine.stop()


def current_engine() -> Runtime | None:
    """This process's running engine (as a :class:`~flovyn_nb.runtime.Runtime`), or None."""
    runtime = _runtime
    return runtime if runtime is not None and runtime.running else None


def running_engine() -> Engine | None:
    """The engine object itself, for tests of its internal mechanisms and the bench only:
    everything else goes through this module's functions and :class:`Runtime`."""
    return current()


def current() -> Engine | None:
    """The running engine; one whose loop died says so (EngineStopped) instead of
    passing for no engine at all."""
    engine = _engine
    if engine is not None and engine.failure is not None:
        raise engine.failure
    return engine if engine is not None and engine.running else None


def require_engine() -> Engine:
    engine = current()
    if engine is None:
        raise EngineError(
            "the flovyn engine is not running: call flovyn_nb.start(store=...) "
            "or %load_ext flovyn_nb first"
        )
    return engine


def store_for(store: str | os.PathLike[str] | None, *, flush: bool = True) -> Store:
    """The store to query: the engine's (flushed first unless ``flush=False``: the feed
    only watches its doorbell), or a (cached) handle on the given/default path."""
    engine = current()
    if engine is not None and (store is None or location_of(store) == engine.store.location):
        if flush:
            engine.flush()
        return engine.store
    target = store_target(store)
    location = location_of(target)
    with _lock:
        cached = _stores.get(location)
        if cached is None:
            cached = _stores[location] = open_store(target, create=False)
        return cached


def store_target(store: str | os.PathLike[str] | None = None) -> str:
    """What opens the store a query with ``store=`` reads (like :func:`store_location`,
    but a URL keeps its password: a location this process saw as a URL maps back to it)."""
    if store is None:
        engine = current()
        store = engine.store.location if engine is not None else default_store_path()
    if not is_url(store):
        return location_of(store)
    location = location_of(store)
    if location != str(store):  # a URL with its password: kept here, never shown
        _targets[location] = str(store)
    return _targets.get(location, str(store))


def engine_on(store: str | os.PathLike[str] | None) -> Engine | None:
    """This process's engine if it runs on ``store``: inbox writes then go through it (it
    delivers them at once, and its own doorbell rings do not wake it)."""
    engine = current()
    if engine is not None and (store is None or location_of(store) == engine.store.location):
        return engine
    return None


def inbox_write(store: Store, write: Callable[[Store], Any]) -> None:
    """Write into a run's inbox and let go of the store at once: the run's owner (another
    process) is about to open it to pick the change up."""
    try:
        write(store)
    finally:
        engine = _engine
        if engine is None or not engine.running or engine.store is not store:
            store.release()


def store_location(store: str | os.PathLike[str] | None = None) -> str:
    """The location of the store a query with ``store=`` reads: the given one, else the
    running engine's, else the default store (by canonical path)."""
    if store is not None:
        return location_of(store)
    engine = current()
    if engine is not None:
        return engine.store.location
    return location_of(default_store_path())


def change_feed() -> Feed:
    """The process's change feed, made on first use (``client.watch`` subscribes to it)."""
    global _feed
    with _lock:
        if _feed is None:  # its thread asks for the engine without raising, never flushes
            running = lambda: _engine if _engine and _engine.running else None
            _feed = Feed(running, lambda location: store_for(location, flush=False))
            atexit.register(_feed.stop)  # after the store's exit hook, so it runs first
        return _feed
