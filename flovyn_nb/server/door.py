"""The one way the server's handlers reach the store: client door functions on a pool.

DuckDB stores are shared by taking turns on the file: a read may wait for a kernel to let
go of it (up to its lock timeout). That wait must never happen on tornado's loop, which
serves every notebook and terminal of the server, so each call runs on a small thread
pool and the handler awaits it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from flovyn_nb import client
from flovyn_nb.errors import FlovynError, StoreLocked
from flovyn_nb.server.errors import ApiError, one_line

__all__ = ["Door", "find_store"]

T = TypeVar("T")


def find_store(setting: str, root_dir: str) -> str:
    """The location of the store to serve: ``c.FlovynNb.store`` (relative to the server's
    root folder), else ``FLOVYN_NB_STORE``, else the store a kernel started in the root
    folder finds (the client's discovery, from the root folder rather than the server's
    working folder).

    Raises:
        InvalidInput: the setting is not a usable path or URL.
    """
    root = Path(root_dir).expanduser()
    if setting:
        is_url = "://" in setting
        target = setting if is_url or Path(setting).expanduser().is_absolute() else root / setting
        return client.store_location(target)
    if os.environ.get("FLOVYN_NB_STORE"):
        return client.store_location()
    discover = getattr(client, "discovered_store_location", None)
    if discover is not None:  # the client walks up from a folder to the project's store
        return str(discover(root))
    # An older client resolves its default from the working folder only.
    found = Path(client.store_location())
    try:
        relative = found.relative_to(Path.cwd().resolve())
    except ValueError:
        return str(found)
    return client.store_location(root / relative)


class Door:
    """The store the server serves (``location``) and the pool its client calls run on.

    ``problem`` is set when the configured store cannot be used at all (a bad setting):
    every call then answers 503 with it, instead of a traceback per request.
    """

    def __init__(self, location: str, *, workers: int = 2) -> None:
        self.location = location
        self.problem: str | None = None
        self._checked_once = False
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="flovyn-nb-api")

    @property
    def is_url(self) -> bool:
        return "://" in self.location

    def exists(self) -> bool:
        """Whether there is a store yet (a file store appears with its first run)."""
        return self.is_url or Path(self.location).exists()

    async def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the pool (client calls get ``store=`` from the caller).

        Raises:
            ApiError: 503 when the store cannot be used (see ``problem``).
            FlovynError: whatever the client raises (the handler maps it to a status).
        """
        loop = asyncio.get_running_loop()
        call = functools.partial(self._checked, fn, *args, **kwargs)
        return await loop.run_in_executor(self._pool, call)

    def _checked(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        # The first call checks the setting, so that no request is answered before the
        # check (a bad URL would otherwise read as a bad value of that request).
        with self._lock:
            if not self._checked_once:
                self.problem = self.problem or self.check()
                self._checked_once = True
        if self.problem is not None:
            raise ApiError(503, self.problem)
        return fn(*args, **kwargs)

    def check(self) -> str | None:
        """Open the store once and return a one-line problem when the setting cannot
        work; a store that is busy right now, or not there yet, is no problem."""
        if not self.exists():
            return None
        try:
            client.list_runs(limit=1, store=self.location)
        except StoreLocked:
            return None
        except FlovynError as error:
            return (
                f"flovyn_nb: the store {self.location} cannot be used ({one_line(str(error))}); "
                "set c.FlovynNb.store or FLOVYN_NB_STORE to a flovyn store"
            )
        return None

    async def start(self) -> str | None:
        """Check the setting now (at server start, off the loop); the problem, if any."""
        try:
            await self.call(lambda: None)
        except ApiError:
            pass
        return self.problem

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
