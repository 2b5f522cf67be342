"""What a cell shows when it redefines a workflow that has runs in flight.

The registry replaces a definition when its cell runs again. Runs this kernel executes keep
the code they started with; runs resumed later (after a restart, or by another process)
replay their history on the newest definition and fail with ``DeterminismViolation`` if the
new code issues other steps. So when a changed workflow has active runs, the cell that
changed it replays their histories on the new code at once (``fn.check_replay``: nothing
is executed) and says whether they replay OK, or which run breaks at which step.
Registration happens on the main thread while that cell runs, so displaying from the
registry listener lands in the right cell.
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

__all__ = ["changed_runs", "check_text", "on_registered", "warning_text"]

log = logging.getLogger("flovyn_nb")
SHOWN = 5  # run ids named in the warning
CHECKED = 50  # in-flight runs replayed when a cell redefines their workflow


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


def check_text(definition: WorkflowDefinition[Any], run_ids: list[str]) -> tuple[bool, str]:
    """(all replay OK, what to show): the replay check of the changed runs, in words."""
    checked = client.check_replay(definition, run_ids[:CHECKED])
    text = client.replay_summary(definition.name, checked)
    if len(run_ids) > CHECKED:
        text += f" ({CHECKED} of {len(run_ids)} checked: %flovyn check {definition.name})"
    return all(r.ok for r in checked), text


def on_registered(definition: WorkflowDefinition[Any]) -> None:
    """Registry listener: replay the in-flight runs of a changed workflow on its new code
    and say in the running cell whether they replay."""
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

    try:
        ok, text = check_text(definition, run_ids)
    except Exception as exc:  # the defining cell must not fail for it
        # The check could not run (a busy store, ...): say what is known without it.
        log.debug("flovyn_nb: replay check skipped: %r", exc)
        ok, text = False, warning_text(definition.name, run_ids)
    colours = ("#d1e7dd", "#198754") if ok else ("#fff3cd", "#e0a800")
    display(  # type: ignore[no-untyped-call]
        {
            "text/plain": text,
            "text/html": (
                f'<div style="background:{colours[0]};border-left:4px solid {colours[1]};'
                f'padding:4px 8px;white-space:pre-wrap">{html.escape(text)}</div>'
            ),
        },
        raw=True,
    )
