"""What every handler of the API shares: the door to the store, JSON in and out, errors.

Every handler derives from Jupyter's ``APIHandler``: its methods are wrapped in
``@tornado.web.authenticated`` (no token, no cookie: 403) and Jupyter checks the XSRF
token of cookie-authenticated writes before the method runs. Errors answer
``{"error": "<one line>"}`` with the status of :mod:`flovyn_nb.server.errors`; the
server log gets the traceback only of an error the API has no answer for.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from jupyter_server.base.handlers import APIHandler
from tornado import web

from flovyn_nb.errors import FlovynError, InvalidInput
from flovyn_nb.server.door import Door
from flovyn_nb.server.errors import ApiError, one_line, status_of

__all__ = ["ROOT", "BaseHandler", "Route"]

ROOT = "flovyn-nb/api"  # under the server's base_url


class Route(NamedTuple):
    """A route: its pattern under :data:`ROOT` (tornado regex), its handler class, and its
    path template in the OpenAPI document."""

    pattern: str
    handler: type[BaseHandler]
    template: str


SEGMENT = r"([^/]+)"  # one path segment (a workflow id, a promise or workflow name)


class BaseHandler(APIHandler):
    """The base of the API's handlers (see the module docstring)."""

    @property
    def door(self) -> Door:
        door: Door = self.settings["flovyn_nb_door"]
        return door

    def args(self) -> dict[str, str]:
        """The query arguments, one string each (a repeated one joined by commas:
        ``status=FAILED&status=CANCELLED`` reads as ``FAILED,CANCELLED``)."""
        return {
            name: ",".join(self.get_query_arguments(name)) for name in self.request.query_arguments
        }

    def body(self) -> dict[str, Any]:
        """The request's JSON object (an empty body reads as ``{}``).

        Raises:
            InvalidInput: not JSON, or not an object.
        """
        raw = self.request.body
        if not raw.strip():
            return {}
        try:
            value = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidInput(f"the request body is not valid JSON ({error})") from None
        if not isinstance(value, dict):
            raise InvalidInput("the request body must be a JSON object")
        return value

    def reply(self, value: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, default=str))

    # -- errors ----------------------------------------------------------------------------

    def _answer(self, error: BaseException | None, status: int) -> tuple[int, str]:
        if isinstance(error, ApiError):
            return error.status, error.message
        if isinstance(error, FlovynError):
            answer = status_of(error)
            if answer != 500:
                return answer, one_line(str(error))
        if isinstance(error, web.HTTPError):
            text = error.log_message % error.args if error.log_message else error.reason
            return error.status_code, one_line(text or self._reason)
        if status >= 500:
            name = type(error).__name__ if error is not None else "error"
            return status, f"internal error of the flovyn_nb server ({name}); see the server log"
        return status, self._reason

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        status, message = self._answer(exc_info[1] if exc_info else None, status_code)
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Answered errors are the caller's business: one log line, no traceback.
        if isinstance(value, ApiError | FlovynError) and self._answer(value, 500)[0] < 500:
            self.log.info("flovyn_nb: %s %s: %s", self.request.method, self.request.path, value)
            return
        if isinstance(value, ApiError | FlovynError) and self._answer(value, 500)[0] in (501, 503):
            # Said once at start (a bad setting) or per request by Jupyter's access log.
            self.log.debug("%s", one_line(str(value)))
            return
        super().log_exception(typ, value, tb)
