"""The OpenAPI 3.1 document of ``/flovyn-nb/api/`` (served at ``openapi.json``).

The front end (``extension/``) is written against it; a test checks that every route of
the app is documented here and that the document is valid OpenAPI.
"""

from __future__ import annotations

from typing import Any

__all__ = ["API_VERSION", "document"]

API_VERSION = "2.0.0"  # of this API (additions: minor; changed shapes: major)

J = dict[str, Any]
STR: J = {"type": "string"}
INT: J = {"type": "integer"}
NUM: J = {"type": "number"}
TIME: J = {"type": "string", "format": "date-time"}
ANY: J = {}  # any JSON value


def _null(schema: J) -> J:
    return {"anyOf": [schema, {"type": "null"}]}


def _ref(name: str) -> J:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str] | None = None, **props: J) -> J:
    return {"type": "object", "properties": props, "required": required or list(props)}


def _list(item: J) -> J:
    return {"type": "array", "items": item}


STATUS: J = {
    "type": "string",
    "enum": ["PENDING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"],
}

SCHEMAS: dict[str, J] = {
    "Error": _obj(error={**STR, "description": "one line: what was wrong and what to do"}),
    "Failure": _obj(type=STR, message=STR, traceback=STR),
    "RunRow": _obj(
        workflowId=STR,
        executionId=STR,
        kind={**STR, "description": "the workflow's name"},
        status=STATUS,
        createdAt=TIME,
        updatedAt=TIME,
        durationMs={**INT, "description": "until the run ended, or until now while active"},
        error={**_null(STR), "description": "one-line summary of the run's error"},
        waitingFor={**_list(STR), "description": "names of its pending promises"},
        queue={**STR, "description": "the queue it waits in for an engine"},
    ),
    "RunPage": _obj(
        ["runs", "total", "limit", "offset"],
        runs=_list(_ref("RunRow")),
        total={**INT, "description": "runs matching every filter"},
        counts={
            "type": "object",
            "additionalProperties": INT,
            "description": "matches of every filter but status, by status (filter chips)",
        },
        limit=INT,
        offset=INT,
    ),
    "Attempt": _obj(
        attempt=INT,
        status=STR,
        error={**_null(STR), "description": "one-line summary"},
        startedAt=_null(TIME),
        endedAt=_null(TIME),
    ),
    "Step": _obj(
        index={**INT, "description": "1-based step number (as DeterminismViolation names it)"},
        name=STR,
        kind={
            "type": "string",
            "enum": ["task", "timer", "promise", "child", "operation", "state"],
        },
        status=STR,
        attempts=_list(_ref("Attempt")),
        input=ANY,
        output=ANY,
        error={**_null(STR), "description": "one-line summary"},
        startedAt=_null(TIME),
        endedAt=_null(TIME),
        childWorkflowId=_null(STR),
    ),
    "EarlierAttempt": _obj(
        attempt={**INT, "description": "1 for the first attempt"},
        status=STATUS,
        error={**_null(STR), "description": "one-line summary"},
        endedAt=_null(TIME),
        retriedAt=TIME,
        fromStep={**_null(INT), "description": "the step the next attempt ran again from"},
        reason=STR,
        steps={**_list(_ref("Step")), "description": "its steps as they stood"},
    ),
    "Event": _obj(seq=INT, type=STR, payload={"type": "object"}, ts=TIME),
    "RunDetail": {
        "allOf": [
            _ref("RunRow"),
            _obj(
                ["input", "output", "error", "steps", "events", "source"],
                input=ANY,
                output=ANY,
                error=_null(_ref("Failure")),
                parentId=_null(STR),
                steps=_list(_ref("Step")),
                attempt={**INT, "description": "the run's attempt (1 until retried)"},
                earlierAttempts={
                    **_list(_ref("EarlierAttempt")),
                    "description": "the attempts a retry superseded, oldest first",
                },
                forkedFrom={**_null(STR), "description": "a fork: the run it was forked from"},
                fromStep={**_null(INT), "description": "a fork: the step it ran again from"},
                events=_list(_ref("Event")),
                source={**_null(STR), "description": "the workflow's source as registered"},
            ),
        ]
    },
    "LogLine": _obj(
        ["ts", "step", "level", "text"],
        ts=TIME,
        step=_null(STR),
        level=STR,
        text=STR,
        stream=STR,
    ),
    "Promise": _obj(
        workflowId=STR,
        name=STR,
        schema={**ANY, "description": "JSON schema of the value"},
        createdAt=TIME,
        timeoutAt=_null(TIME),
        description=_null(STR),
    ),
    "Workflow": _obj(
        name=STR,
        version={**INT, "description": "the latest recorded version"},
        description=_null(STR),
        inputSchema=ANY,
        served={"type": "boolean", "description": "a kernel or worker serves it now"},
        queues={**_list(STR), "description": "the queues on which it is served"},
    ),
    "Metrics": _obj(
        ["days", "since", "runs", "stepDurations", "failureRates", "runsPerDay"],
        days=INT,
        since={**_null(TIME), "description": "the window's start, a midnight UTC"},
        runs={**INT, "description": "runs created in the window (all of them are counted)"},
        stepDurations=_list(
            _obj(
                workflow=STR,
                step={**STR, "description": "the task's name, or the child workflow's"},
                kind={"type": "string", "enum": ["task", "child"]},
                count=INT,
                p50Ms=NUM,
                p90Ms=NUM,
                p99Ms=NUM,
                maxMs=NUM,
                histogram={
                    **_list(_obj(upToMs=NUM, count=INT)),
                    "description": "steps by duration, in buckets [upToMs / 2, upToMs)",
                },
            )
        ),
        failureRates=_list(
            _obj(
                workflow=STR,
                runs={**INT, "description": "runs that ended"},
                failed=INT,
                rate=NUM,
            )
        ),
        runsPerDay=_list(_obj(day={**STR, "format": "date"}, workflow=STR, count=INT)),
    ),
    "Started": _obj(workflowId=STR),
    "Schedule": _obj(
        name=STR,
        workflow={**STR, "description": "the workflow each firing starts a run of"},
        cron={**STR, "description": "a cron expression, in UTC"},
        input=ANY,
        queue=STR,
        catchUp={"type": "string", "enum": ["none", "one", "all"]},
        paused={"type": "boolean"},
        nextFire={**_null(TIME), "description": "its next slot (null while paused)"},
        lastSlot={**_null(TIME), "description": "the latest slot it fired"},
    ),
}

_ERRORS = {
    "400": "a bad value (nothing was changed)",
    "403": "no Jupyter token or login cookie, or a write without the XSRF token",
    "404": "no such run, promise or workflow (the message names it)",
    "409": "the run or promise is in a state that does not allow this",
    "501": "this flovyn_nb does not have the feature yet",
    "503": "the store cannot be used (bad setting, or busy past its lock timeout)",
}


def _op(
    summary: str,
    ok: J | None,
    *,
    codes: str,
    status: str = "200",
    body: J | None = None,
    params: list[J] | None = None,
) -> J:
    responses: J = {
        status: {"description": "OK"}
        if ok is None
        else {"description": "OK", "content": {"application/json": {"schema": ok}}}
    }
    for code in codes.split():
        responses[code] = {
            "description": _ERRORS[code],
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    op: J = {"summary": summary, "responses": responses}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _q(name: str, schema: J, description: str) -> J:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _p(name: str) -> J:
    return {"name": name, "in": "path", "required": True, "schema": STR}


WID = [_p("workflowId")]
PROMISE = [_p("workflowId"), _p("name")]
ACK = _obj(workflowId=STR)

PATHS: dict[str, J] = {
    "/runs": {
        "get": _op(
            "Runs, one page",
            _ref("RunPage"),
            codes="400 403 503",
            params=[
                _q("status", STR, "statuses, comma-separated (RUNNING,WAITING)"),
                _q("kind", STR, "workflow name"),
                _q(
                    "q",
                    STR,
                    "text in the workflow id, execution id or workflow name (case-insensitive)",
                ),
                _q("limit", {**INT, "minimum": 1, "maximum": 500, "default": 50}, "page size"),
                _q("offset", {**INT, "minimum": 0, "default": 0}, "runs to skip"),
                _q(
                    "sort",
                    {**STR, "default": "-created"},
                    "created, updated, workflowId, kind, status or duration; '-' for descending",
                ),
            ],
        )
    },
    "/runs/{workflowId}": {
        "get": _op(
            "One run with steps, events and source",
            _ref("RunDetail"),
            codes="403 404 503",
            params=WID,
        )
    },
    "/runs/{workflowId}/logs": {
        "get": _op(
            "The run's log lines",
            _obj(lines=_list(_ref("LogLine"))),
            codes="400 403 404 503",
            params=[
                *WID,
                _q(
                    "since",
                    STR,
                    "only lines after this time (ISO 8601 or epoch s): the ts of the last line read",
                ),
            ],
        )
    },
    "/runs/{workflowId}/cancel": {
        "post": _op(
            "Ask the run's owner to cancel it",
            _obj(workflowId=STR, cancelRequested={"type": "boolean"}),
            status="202",
            codes="400 403 404 409 503",
            params=WID,
            body=_obj([], reason=STR),
        )
    },
    "/runs/{workflowId}/retry": {
        "post": _op(
            "Run an ended run again from its failed step",
            ACK,
            status="202",
            codes="403 404 409 501 503",
            params=WID,
        )
    },
    "/runs/{workflowId}/fork": {
        "post": _op(
            "A new run reusing the steps before fromStep",
            ACK,
            status="201",
            codes="400 403 404 409 501 503",
            params=WID,
            body=_obj(
                ["fromStep"],
                fromStep={"anyOf": [{**INT, "minimum": 1}, STR]},
                workflowId=STR,
                input=ANY,
            ),
        )
    },
    "/promises": {
        "get": _op(
            "Pending promises, oldest first", _obj(promises=_list(_ref("Promise"))), codes="403 503"
        )
    },
    "/runs/{workflowId}/promises/{name}/resolve": {
        "post": _op(
            "Resolve a pending promise",
            _obj(workflowId=STR, name=STR, status=STR),
            codes="400 403 404 409 503",
            params=PROMISE,
            body=_obj(value=ANY),
        )
    },
    "/runs/{workflowId}/promises/{name}/reject": {
        "post": _op(
            "Reject a pending promise",
            _obj(workflowId=STR, name=STR, status=STR),
            codes="400 403 404 409 503",
            params=PROMISE,
            body=_obj([], reason=STR),
        )
    },
    "/workflows": {
        "get": _op(
            "Registered workflow definitions",
            _obj(workflows=_list(_ref("Workflow"))),
            codes="403 501 503",
        )
    },
    "/workflows/{name}/start": {
        "post": _op(
            "Start a run (executed by a kernel or worker serving the workflow)",
            _ref("Started"),
            status="201",
            codes="400 403 404 409 501 503",
            params=[_p("name")],
            body=_obj([], input=ANY, workflowId=STR, queue=STR),
        )
    },
    "/metrics": {
        "get": _op(
            "Step duration distributions, failure rates, runs per day (every run of the window)",
            _ref("Metrics"),
            codes="400 403 503",
            params=[
                _q("days", {**INT, "minimum": 1, "maximum": 366, "default": 14}, "window in days")
            ],
        )
    },
    "/schedules": {
        "get": _op(
            "Cron schedules with their next fire time",
            _obj(schedules=_list(_ref("Schedule"))),
            codes="403 503",
        )
    },
    "/schedules/{name}/pause": {
        "post": _op(
            "Stop firing a schedule (slots while paused are skipped)",
            _ref("Schedule"),
            codes="403 404 503",
            params=[_p("name")],
        )
    },
    "/schedules/{name}/resume": {
        "post": _op(
            "Fire a paused schedule again from its next slot",
            _ref("Schedule"),
            codes="403 404 503",
            params=[_p("name")],
        )
    },
    "/events": {
        "get": {
            "summary": "Live feed (Server-Sent Events)",
            "description": 'Each message is `data: {json}`: {"type": "run-changed", "workflowId",'
            ' "status", "statusChanged"} or {"type": "promise-waiting", "workflowId", "name"};'
            ' a run-changed message for a new run may also carry "created": true and its'
            ' row\'s "executionId", "kind", "createdAt" (as in RunSummary) and "queue";'
            " a `: heartbeat` comment every 15 s when idle.",
            "responses": {
                "200": {
                    "description": "the stream",
                    "content": {"text/event-stream": {"schema": STR}},
                },
                "403": {"description": _ERRORS["403"]},
                "503": {
                    "description": _ERRORS["503"],
                    "content": {"application/json": {"schema": _ref("Error")}},
                },
            },
        }
    },
    "/openapi.json": {"get": _op("This document", {"type": "object"}, codes="403")},
}


def document() -> J:
    """The OpenAPI document (a fresh dict)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "flovyn_nb Jupyter server API",
            "version": API_VERSION,
            "description": "Runs, promises and workflows of the server's flovyn store. Every "
            "route needs Jupyter's authentication (token or login cookie); writes by cookie "
            "need the XSRF token (X-XSRFToken header). Times are ISO 8601 in UTC.",
        },
        "servers": [{"url": "/flovyn-nb/api"}],
        "paths": PATHS,
        "components": {"schemas": SCHEMAS},
    }
