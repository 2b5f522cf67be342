"""``workflows``: registered definitions, starting a run from a form, and ``metrics``."""

from __future__ import annotations

from typing import Any

from tornado import web

from flovyn_nb import client
from flovyn_nb.errors import InvalidInput
from flovyn_nb.server.errors import ApiError
from flovyn_nb.server.handlers.base import SEGMENT, BaseHandler, Route
from flovyn_nb.server.metrics import metrics

__all__ = ["ROUTES"]


def _field(item: Any, *names: str) -> Any:
    """A definition's field, whether the client hands dicts or objects."""
    for name in names:
        if isinstance(item, dict) and name in item:
            return item[name]
        if hasattr(item, name):
            return getattr(item, name)
    return None


def _definition(item: Any) -> dict[str, Any]:
    return {
        "name": _field(item, "name"),
        "version": _field(item, "version"),
        "description": _field(item, "description"),
        "inputSchema": _field(item, "input_schema", "inputSchema"),
        "served": bool(_field(item, "served")),
    }


def _missing(name: str) -> ApiError:
    return ApiError(
        501,
        f"this flovyn_nb has no client.{name} yet (the definitions registry in the store); "
        "upgrade flovyn_nb",
    )


class WorkflowsHandler(BaseHandler):
    """``GET workflows``: the definitions recorded in the store, with their input schemas
    and whether a kernel or worker serves them now."""

    @web.authenticated
    async def get(self) -> None:
        list_workflows = getattr(client, "list_workflows", None)
        if list_workflows is None:
            raise _missing("list_workflows")
        if not self.door.exists():
            self.reply({"workflows": []})
            return
        found = await self.door.call(list_workflows, store=self.door.location)
        self.reply({"workflows": [_definition(item) for item in found]})


class StartHandler(BaseHandler):
    """``POST workflows/{name}/start`` ``{"input", "workflowId"?, "queue"?}``: record a new
    run; a kernel or worker that serves the workflow executes it (the server runs no code)."""

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
        if getattr(client, "list_workflows", None) is None:
            # Without the registry, client.start_workflow needs an engine in this process,
            # and the server never starts one.
            raise _missing("list_workflows")
        handle = await self.door.call(
            client.start_workflow, name, body.get("input"), store=self.door.location, **options
        )
        self.reply({"workflowId": handle.workflow_id}, 201)


class MetricsHandler(BaseHandler):
    """``GET metrics?days=14``: step durations, failure rates and runs per day."""

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
            self.reply(
                {"days": days, "sampledRuns": 0, "stepDurations": [], "failureRates": [],
                 "runsPerDay": []}
            )  # fmt: skip
            return
        self.reply(await self.door.call(metrics, self.door.location, days))


ROUTES = [
    Route("workflows", WorkflowsHandler, "/workflows"),
    Route(f"workflows/{SEGMENT}/start", StartHandler, "/workflows/{name}/start"),
    Route("metrics", MetricsHandler, "/metrics"),
]
