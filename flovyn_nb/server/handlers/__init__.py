"""The tornado handlers of ``/flovyn-nb/api/``, one module per resource; :data:`ROUTES`
lists every route (the extension adds them; the OpenAPI test checks each is documented)."""

from __future__ import annotations

from flovyn_nb.server.handlers.base import ROOT, Route
from flovyn_nb.server.handlers.events import ROUTES as _EVENTS
from flovyn_nb.server.handlers.promises import ROUTES as _PROMISES
from flovyn_nb.server.handlers.runs import ROUTES as _RUNS
from flovyn_nb.server.handlers.schedules import ROUTES as _SCHEDULES
from flovyn_nb.server.handlers.workflows import ROUTES as _WORKFLOWS

__all__ = ["ROOT", "ROUTES", "Route"]

ROUTES: list[Route] = [*_RUNS, *_PROMISES, *_WORKFLOWS, *_SCHEDULES, *_EVENTS]
