"""``workflows``: registered definitions, starting a run from a form, and ``metrics``."""

from __future__ import annotations

from typing import Any

from tornado import web

from flovyn_nb import client
from flovyn_nb.errors import InvalidInput
from flovyn_nb.server.errors import ApiError
from flovyn_nb.server.handlers.base import SEGMENT, BaseHandler, Route
from flovyn_nb.server.metrics import empty, metrics

__all__ = ["ROUTES"]


def _definition(item: client.WorkflowInfo) -> dict[str, Any]:
    return {
        "name": item.name,
        "version": item.version,
        "description": item.description,
        "inputSchema": item.input_schema,
        "served": item.served,
        "queues": item.queues,
    }


class WorkflowsHandler(BaseHandler):
    """``GET workflows``: the definitions recorded in the store, with their input schemas
    and whether a live kernel or worker serves them (and on which queues)."""

    @web.authenticated
    async def get(self) -> None:
        if not self.door.exists():
            self.reply({"workflows": []})
            return
        found = await self.door.call(client.list_workflows, store=self.door.location)
        self.reply({"workflows": [_definition(item) for item in found]})


class StartHandler(BaseHandler):
    """``POST workflows/{name}/start`` ``{"input", "workflowId"?, "queue"?}``: record a new
    run, waiting in its queue; a kernel or worker that serves the workflow executes it
    (the server runs no code). The input is checked against the recorded input schema
    (400, nothing recorded); an unknown workflow is 404. A ``workflowId`` already taken
    by a run of the same workflow answers that run (starts are idempotent)."""

    @web.authenticated
    async def post(self, name: str) -> None:
        body = self.body()
        options: dict[str, Any] = {}
        for key, option in (("workflowId", "workflow_id"), ("queue", "queue")):
            value = body.get(key)
            if value is not None:
                if not isinstance(value, str) or not value:
                    raise InvalidInput(f"{key} must be a non-empty string")
                options[option] = value
        if not self.door.exists():
            raise ApiError(
                404, f"no workflow named {name!r}: there is no store at {self.door.location} yet"
            )
        handle = await self.door.call(
            client.start_workflow, name, body.get("input"), store=self.door.location, **options
        )
        self.reply({"workflowId": handle.workflow_id}, 201)


class MetricsHandler(BaseHandler):
    """``GET metrics?days=14``: step duration distributions and failure rates per
    workflow, and runs per day, over every run created in the last ``days`` (UTC) days."""

    @web.authenticated
    async def get(self) -> None:
        raw = self.args().get("days", "14")
        try:
            days = int(raw)
        except ValueError:
            days = 0
        if not 1 <= days <= 366:
            raise InvalidInput(f"days must be a whole number from 1 to 366, not {raw!r}")
        if not self.door.exists():
            self.reply(empty(days))
            return
        self.reply(await self.door.call(metrics, self.door.location, days))


ROUTES = [
    Route("workflows", WorkflowsHandler, "/workflows"),
    Route(f"workflows/{SEGMENT}/start", StartHandler, "/workflows/{name}/start"),
    Route("metrics", MetricsHandler, "/metrics"),
]
