"""The warning a cell shows when it redefines a workflow that has runs in flight.

The registry replaces a definition when its cell runs again. Runs this kernel executes keep
the code they started with; runs resumed later (after a restart, or by another process)
replay their history on the newest definition and fail with ``DeterminismViolation`` if the
new code issues other steps. So a changed workflow with active runs deserves a warning in
the cell that changed it. Registration happens on the main thread while that cell runs,
so displaying from the registry listener lands in the right cell.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import Any

from flovyn_nb import client
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.errors import FlovynError
from flovyn_nb.model import ACTIVE_STATUSES

__all__ = ["changed_runs", "on_registered", "warning_text"]

log = logging.getLogger("flovyn_nb")
SHOWN = 5  # run ids named in the warning


def changed_runs(definition: WorkflowDefinition[Any]) -> list[str]:
    """Workflow ids of active runs of this workflow started with other source code."""
    # The run row keeps the hash its run started with: one query, no history loaded.
    started_with = client.run_source_hashes(definition.name, status=ACTIVE_STATUSES)
    return [
        wid for wid, source_hash in started_with.items() if source_hash != definition.source_hash
    ]


def warning_text(name: str, run_ids: list[str]) -> str:
    named = ", ".join(run_ids[:SHOWN])
    if len(run_ids) > SHOWN:
        named += f" and {len(run_ids) - SHOWN} more"
    return (
        f"Warning: workflow {name!r} changed while {len(run_ids)} run(s) of it are in "
        f"flight: {named}. Runs live in this kernel keep their old code; runs resumed from "
        "the store (after a restart, or by another process) replay on the new code and fail "
        "with DeterminismViolation if their recorded steps differ."
    )


def on_registered(definition: WorkflowDefinition[Any]) -> None:
    """Registry listener: warn in the running cell about runs of a changed workflow."""
    if threading.current_thread() is not threading.main_thread():
        return  # not from a cell: there is no cell to warn in
    if client.current_engine() is None:
        return
    try:
        run_ids = changed_runs(definition)
    except FlovynError as exc:  # a busy or broken store must not break the defining cell
        log.debug("flovyn_nb: redefinition check skipped: %s", exc)
        return
    if not run_ids:
        return
    from IPython.display import display

    text = warning_text(definition.name, run_ids)
    display(  # type: ignore[no-untyped-call]
        {
            "text/plain": text,
            "text/html": (
                '<div style="background:#fff3cd;border-left:4px solid #e0a800;'
                f'padding:4px 8px">{html.escape(text)}</div>'
            ),
        },
        raw=True,
    )
