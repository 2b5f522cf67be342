"""``runs``: the list, one run, its logs, and the actions on it (cancel, retry, fork)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from tornado import web

from flovyn_nb import client
from flovyn_nb.errors import InvalidInput, UnknownWorkflowKind
from flovyn_nb.history.folded import FoldedRun
from flovyn_nb.model import RunInfo, RunStatus
from flovyn_nb.server import shapes
from flovyn_nb.server.errors import ApiError
from flovyn_nb.server.handlers.base import SEGMENT, BaseHandler, Route
from flovyn_nb.server.listing import Query, list_page

__all__ = ["ROUTES"]


def _no_store(door_location: str, workflow_id: str) -> ApiError:
    return ApiError(
        404, f"no run with workflow id {workflow_id!r}: there is no store at {door_location} yet"
    )


def _waiting(store: str, workflow_id: str | None = None) -> dict[str, list[str]]:
    names: defaultdict[str, list[str]] = defaultdict(list)
    for item in client.pending_promises(workflow_id, store=store):
        names[item.workflow_id].append(item.name)
    return names


def _active_run(store: str, workflow_id: str, action: str) -> RunInfo:
    """The run, which must be active for ``action``.

    Raises:
        UnknownWorkflow: no such run. ApiError: 409, the run already ended.
    """
    run = client.get_run(workflow_id, events=False, store=store)
    if run.status.is_terminal:
        raise ApiError(
            409, f"run {workflow_id!r} already ended ({run.status.value}); nothing to {action}"
        )
    return run


class RunsHandler(BaseHandler):
    """``GET runs?status=&kind=&q=&limit=&offset=&sort=``: one page of runs and the total."""

    @web.authenticated
    async def get(self) -> None:
        query = Query.parse(self.args())
        if not self.door.exists():
            self.reply(
                {"runs": [], "total": 0, "counts": {}, "limit": query.limit, "offset": query.offset}
            )
            return
        location = self.door.location

        def read() -> dict[str, Any]:
            page = list_page(query, location)
            waiting = _waiting(location) if page.runs else {}
            return {
                "runs": [shapes.run_row(r, waiting.get(r.workflow_id, ())) for r in page.runs],
                "total": page.total,
                "counts": page.counts,
                "limit": query.limit,
                "offset": query.offset,
            }

        self.reply(await self.door.call(read))


class RunHandler(BaseHandler):
    """``GET runs/{workflowId}``: the run with its steps, events and workflow source."""

    @web.authenticated
    async def get(self, workflow_id: str) -> None:
        if not self.door.exists():
            raise _no_store(self.door.location, workflow_id)
        location = self.door.location

        def read() -> dict[str, Any]:
            run = client.get_run(workflow_id, store=location)
            history = shapes.folded(run)
            waiting = _waiting(location, run.workflow_id).get(run.workflow_id, [])
            return shapes.run_detail(run, history, waiting, source=_source(run, history, location))

        self.reply(await self.door.call(read))


def _source(run: RunInfo, history: FoldedRun, store: str) -> str | None:
    """The source of the workflow version the run started with, as its engine recorded
    it in the store (None when it was not recorded)."""
    try:
        return client.workflow_source(run.kind, history.source_hash, store=store)
    except UnknownWorkflowKind:
        return None


def _since(raw: str | None) -> float | None:
    """``since`` as epoch seconds: a number, or an ISO 8601 time (as the lines carry)."""
    if raw is None or raw == "":
        return None
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw).timestamp()
    except ValueError:
        raise InvalidInput(
            f"since must be a time (ISO 8601, as the log lines carry) or epoch seconds, not {raw!r}"
        ) from None


class LogsHandler(BaseHandler):
    """``GET runs/{workflowId}/logs?since=``: the run's captured log lines after ``since``."""

    @web.authenticated
    async def get(self, workflow_id: str) -> None:
        since = _since(self.args().get("since"))
        if not self.door.exists():
            raise _no_store(self.door.location, workflow_id)
        location = self.door.location

        def read() -> dict[str, Any]:
            snapshot = client.run_snapshot(workflow_id, store=location, logs_since=since)
            names = {s.key: s.label for s in shapes.folded(snapshot.info).steps}
            return {"lines": [shapes.log_line(entry, names) for entry in snapshot.logs]}

        self.reply(await self.door.call(read))


class CancelHandler(BaseHandler):
    """``POST runs/{workflowId}/cancel`` ``{"reason"?}``: ask the run's owner to cancel it."""

    @web.authenticated
    async def post(self, workflow_id: str) -> None:
        reason = self.body().get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput("reason must be a string")
        if not self.door.exists():
            raise _no_store(self.door.location, workflow_id)
        location = self.door.location

        def cancel() -> None:
            _active_run(location, workflow_id, "cancel")
            client.cancel_workflow(workflow_id, reason or "", store=location)

        await self.door.call(cancel)
        self.reply({"workflowId": workflow_id, "cancelRequested": True}, 202)


class RetryHandler(BaseHandler):
    """``POST runs/{workflowId}/retry``: a failed or cancelled run again, as a new attempt
    of the same run: the steps before the failed one are reused, the rest is executed by
    the kernel or worker that serves the workflow."""

    @web.authenticated
    async def post(self, workflow_id: str) -> None:
        if not self.door.exists():
            raise _no_store(self.door.location, workflow_id)
        location = self.door.location

        def retry() -> str:
            run = client.get_run(workflow_id, events=False, store=location)
            if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
                raise ApiError(
                    409,
                    f"run {workflow_id!r} is {run.status.value}; only a failed or cancelled "
                    "run can be retried (fork it to run it again from a step)",
                )
            return client.retry_run(workflow_id, store=location).workflow_id

        self.reply({"workflowId": await self.door.call(retry)}, 202)


class ForkHandler(BaseHandler):
    """``POST runs/{workflowId}/fork`` ``{"fromStep", "workflowId"?, "input"?}``: a new run
    that reuses the steps before ``fromStep`` and runs the rest."""

    @web.authenticated
    async def post(self, workflow_id: str) -> None:
        body = self.body()
        from_step: int | str | None = body.get("fromStep")
        valid_int = isinstance(from_step, int) and not isinstance(from_step, bool) and from_step > 0
        if not valid_int and not (isinstance(from_step, str) and from_step):
            raise InvalidInput(
                f"fromStep must be a step number (1 or more) or a step name, not {from_step!r}"
            )
        new_id = body.get("workflowId")
        if new_id is not None and not (isinstance(new_id, str) and new_id):
            raise InvalidInput("workflowId must be a non-empty string")
        options: dict[str, Any] = {"workflow_id": new_id}
        if "input" in body:
            options["input"] = body["input"]
        if not self.door.exists():
            raise _no_store(self.door.location, workflow_id)
        location = self.door.location

        def fork() -> str:
            assert from_step is not None  # checked above
            handle = client.fork_run(workflow_id, from_step, store=location, **options)
            return str(handle.workflow_id)

        self.reply({"workflowId": await self.door.call(fork)}, 201)


ROUTES = [
    Route("runs", RunsHandler, "/runs"),
    Route(f"runs/{SEGMENT}", RunHandler, "/runs/{workflowId}"),
    Route(f"runs/{SEGMENT}/logs", LogsHandler, "/runs/{workflowId}/logs"),
    Route(f"runs/{SEGMENT}/cancel", CancelHandler, "/runs/{workflowId}/cancel"),
    Route(f"runs/{SEGMENT}/retry", RetryHandler, "/runs/{workflowId}/retry"),
    Route(f"runs/{SEGMENT}/fork", ForkHandler, "/runs/{workflowId}/fork"),
]
