"""``events``: the live feed as Server-Sent Events, and ``openapi.json``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from tornado import web
from tornado.iostream import StreamClosedError

from flovyn_nb.server.feed import Broadcaster
from flovyn_nb.server.handlers.base import BaseHandler, Route

__all__ = ["ROUTES"]

_GONE: dict[str, Any] = {"type": "gone"}
_BASELINE_WAIT = 10.0  # seconds a new stream waits for the feed's first read of the store


class EventsHandler(BaseHandler):
    """``GET events``: ``text/event-stream`` of ``data: {json}`` messages (see
    :mod:`flovyn_nb.server.feed`) and a ``: heartbeat`` comment when nothing happened for
    ``c.FlovynNb.heartbeat_interval`` seconds, which also notices a closed browser tab."""

    _queue: asyncio.Queue[dict[str, Any]] | None = None

    @web.authenticated
    async def get(self) -> None:
        broadcaster: Broadcaster = self.settings["flovyn_nb_broadcaster"]
        heartbeat: float = self.settings["flovyn_nb_heartbeat"]
        await self.door.call(lambda: None)  # a store that cannot be used: 503, no stream
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")  # proxies: pass each message at once
        queue = self._queue = broadcaster.open()
        try:
            # Headers and ": connected" go out once the feed tells every change from now
            # on (a store that cannot be read yet: after _BASELINE_WAIT seconds at most).
            await broadcaster.live(timeout=_BASELINE_WAIT)
            self.write(": connected\n\n")
            await self.flush()
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    self.write(": heartbeat\n\n")
                else:
                    if message is _GONE or message.get("type") == "closed":
                        break
                    self.write(f"data: {json.dumps(message)}\n\n")
                await self.flush()
        except StreamClosedError:
            pass
        finally:
            broadcaster.close(queue)
        with contextlib.suppress(StreamClosedError):
            self.finish()

    def on_connection_close(self) -> None:
        if self._queue is not None:
            self._queue.put_nowait(_GONE)
        super().on_connection_close()


class OpenApiHandler(BaseHandler):
    """``GET openapi.json``: the OpenAPI 3.1 document of this API."""

    @web.authenticated
    async def get(self) -> None:
        from flovyn_nb.server.openapi import document

        self.reply(document())


ROUTES = [
    Route("events", EventsHandler, "/events"),
    Route("openapi.json", OpenApiHandler, "/openapi.json"),
]
