"""``schedules``: the store's cron schedules with their next fire time, and pausing or
resuming one (the engines that serve a schedule's workflow fire it; the server only
writes the schedule's row)."""

from __future__ import annotations

from typing import Any

from tornado import web

from flovyn_nb import client
from flovyn_nb.server.errors import ApiError
from flovyn_nb.server.handlers.base import SEGMENT, BaseHandler, Route
from flovyn_nb.server.shapes import iso

__all__ = ["ROUTES", "schedule"]


def schedule(item: client.ScheduleInfo) -> dict[str, Any]:
    """A schedule as the API shows it (``nextFire`` is null while it is paused)."""
    return {
        "name": item.name,
        "workflow": item.kind,
        "cron": item.cron,
        "input": item.input,
        "queue": item.queue,
        "catchUp": item.catch_up,
        "paused": item.paused,
        "nextFire": None if item.paused else iso(item.next_fire),  # a paused one never fires
        "lastSlot": iso(item.last_slot),
    }


def _unknown(name: str, where: str) -> ApiError:
    return ApiError(404, f"no schedule named {name!r} in the store {where}")


class SchedulesHandler(BaseHandler):
    """``GET schedules``: every schedule of the store, by name."""

    @web.authenticated
    async def get(self) -> None:
        if not self.door.exists():
            self.reply({"schedules": []})
            return
        found = await self.door.call(client.list_schedules, store=self.door.location)
        self.reply({"schedules": [schedule(item) for item in found]})


class PauseHandler(BaseHandler):
    """``POST schedules/{name}/pause``: stop firing it (its slots while paused are
    skipped); ``/resume`` fires it again from its next slot. Both answer the schedule as
    it is now; an unknown schedule is 404."""

    paused = True

    @web.authenticated
    async def post(self, name: str) -> None:
        if not self.door.exists():
            raise _unknown(name, self.door.location)
        location = self.door.location

        def find() -> client.ScheduleInfo:
            for item in client.list_schedules(store=location):
                if item.name == name:
                    return item
            raise _unknown(name, location)

        def change() -> dict[str, Any]:
            find()  # unknown: 404 (the client's own check answers 400)
            (client.pause_schedule if self.paused else client.resume_schedule)(name, store=location)
            return schedule(find())

        self.reply(await self.door.call(change))


class ResumeHandler(PauseHandler):
    paused = False


ROUTES = [
    Route("schedules", SchedulesHandler, "/schedules"),
    Route(f"schedules/{SEGMENT}/pause", PauseHandler, "/schedules/{name}/pause"),
    Route(f"schedules/{SEGMENT}/resume", ResumeHandler, "/schedules/{name}/resume"),
]
