"""The ``ExtensionApp``: finds the store, adds the routes, runs the live feed.

Enabled by ``jupyter-config/jupyter_server_config.d/flovyn_nb.json`` (installed with the
package); jupyter_server finds it through ``flovyn_nb._jupyter_server_extension_points``.
Configuration (``jupyter_server_config.py`` or the command line)::

    c.FlovynNb.store = "shared/.flovyn/flovyn.duckdb"   # default: as the kernel finds it
    c.FlovynNb.heartbeat_interval = 15.0                # seconds between SSE heartbeats
"""

from __future__ import annotations

from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Float, Unicode

from flovyn_nb.errors import FlovynError
from flovyn_nb.server.door import Door, find_store
from flovyn_nb.server.errors import one_line
from flovyn_nb.server.feed import Broadcaster
from flovyn_nb.server.handlers import ROOT, ROUTES

__all__ = ["FlovynNb"]


class FlovynNb(ExtensionApp):
    """flovyn_nb's Jupyter server extension: the REST API and live feed of one store."""

    name = "flovyn_nb"
    load_other_extensions = True

    store = Unicode(
        "",
        help="The flovyn store to serve: a DuckDB file (relative to the server's root "
        "folder) or a URL. Default: FLOVYN_NB_STORE, else the store a kernel started in "
        "the root folder uses (.flovyn/flovyn.duckdb).",
    ).tag(config=True)

    heartbeat_interval = Float(
        15.0, help="Seconds between heartbeat comments on an idle live-feed stream."
    ).tag(config=True)

    door: Door | None = None
    broadcaster: Broadcaster | None = None

    def initialize_settings(self) -> None:
        root_dir = str(getattr(self.serverapp, "root_dir", "") or ".")
        problem = None
        try:
            location = find_store(self.store, root_dir)
        except FlovynError as error:
            location = self.store
            problem = (
                f"flovyn_nb: the store setting {self.store!r} cannot be used "
                f"({one_line(str(error))}); set c.FlovynNb.store or FLOVYN_NB_STORE"
            )
        door = self.door = Door(location)
        door.problem = problem
        if problem is not None:
            self.log.error(problem)
        self.broadcaster = Broadcaster(door)
        self.settings.update(
            {
                "flovyn_nb_door": door,
                "flovyn_nb_broadcaster": self.broadcaster,
                "flovyn_nb_heartbeat": float(self.heartbeat_interval),
            }
        )

    def initialize_handlers(self) -> None:
        self.handlers.extend((f"/{ROOT}/{r.pattern}", r.handler) for r in ROUTES)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        door = self.door
        if door is None or door.problem is not None:
            return
        problem = await door.start()
        if problem is not None:
            self.log.error(problem)
        elif not door.exists():
            self.log.info(
                "flovyn_nb: no store at %s yet; it appears with the first run of a notebook",
                door.location,
            )
        else:
            self.log.info("flovyn_nb: serving the runs of %s at /%s/", door.location, ROOT)

    async def stop_extension(self) -> None:
        if self.broadcaster is not None:
            self.broadcaster.shutdown()
        if self.door is not None:
            self.door.close()
