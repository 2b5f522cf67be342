"""``promises``: the inbox of pending promises, and resolving or rejecting one."""

from __future__ import annotations

from typing import Any

from tornado import web

from flovyn_nb import client
from flovyn_nb.errors import InvalidInput
from flovyn_nb.server import shapes
from flovyn_nb.server.errors import ApiError
from flovyn_nb.server.handlers.base import SEGMENT, BaseHandler, Route

__all__ = ["ROUTES"]

RESOLVED_BY = "jupyterlab"


class PromisesHandler(BaseHandler):
    """``GET promises``: every promise waiting for a value, oldest first, with its schema."""

    @web.authenticated
    async def get(self) -> None:
        if not self.door.exists():
            self.reply({"promises": []})
            return
        pending = await self.door.call(client.pending_promises, store=self.door.location)
        self.reply({"promises": [shapes.promise(p) for p in pending]})


class SettleHandler(BaseHandler):
    """``POST runs/{workflowId}/promises/{name}/resolve`` ``{"value"}`` and ``/reject``
    ``{"reason"}``. The value is checked against the promise's type (400, nothing
    changed); a promise the run has not reached is 404 (no early answers from a browser);
    one that was already settled or timed out is 409."""

    reject = False

    @web.authenticated
    async def post(self, workflow_id: str, name: str) -> None:
        body = self.body()
        if self.reject:
            reason = body.get("reason", "")
            if not isinstance(reason, str):
                raise InvalidInput('the body must be {"reason": "<text>"}: reason is a string')
            options: dict[str, Any] = {"reason": reason}
        else:
            if "value" not in body:
                raise InvalidInput('the body must be {"value": <JSON value>}: "value" is missing')
            options = {"value": body["value"]}
        if not self.door.exists():
            raise ApiError(
                404,
                f"no run with workflow id {workflow_id!r}: there is no store at "
                f"{self.door.location} yet",
            )
        location = self.door.location

        def settle() -> None:
            run = client.get_run(workflow_id, events=False, store=location)
            if run.status.is_terminal:
                raise ApiError(
                    409,
                    f"run {workflow_id!r} already ended ({run.status.value}); "
                    f"its promise {name!r} can no longer be answered",
                )
            answer = client.reject_promise if self.reject else client.resolve_promise
            answer(
                workflow_id,
                name,
                store=location,
                resolved_by=RESOLVED_BY,
                allow_early=False,
                **options,
            )

        await self.door.call(settle)
        self.reply({"workflowId": workflow_id, "name": name, "status": self._status})

    @property
    def _status(self) -> str:
        return "REJECTED" if self.reject else "RESOLVED"


class RejectHandler(SettleHandler):
    reject = True


_PROMISE = f"runs/{SEGMENT}/promises/{SEGMENT}"
ROUTES = [
    Route("promises", PromisesHandler, "/promises"),
    Route(f"{_PROMISE}/resolve", SettleHandler, "/runs/{workflowId}/promises/{name}/resolve"),
    Route(f"{_PROMISE}/reject", RejectHandler, "/runs/{workflowId}/promises/{name}/reject"),
]
