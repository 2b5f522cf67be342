"""``fn.cancel_workflow(id, reason=...)``: the reason reaches the workflow as
``WorkflowCancelled.reason``, the handle's error, and the run's snapshot, from this process
and from another one (``flovyn-nb cancel ID --reason``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.history.events import events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.testing import wait_until

CLI = [sys.executable, "-m", "flovyn_nb.cli"]


@fn.workflow(name="cr-catches")
async def catches(ctx: fn.WorkflowContext) -> str:
    try:
        await ctx.promise("never")
    except fn.WorkflowCancelled as exc:
        return f"reason={exc.reason}"
    return "not cancelled"


@fn.workflow(name="cr-waits")
def waits(ctx: fn.SyncWorkflowContext) -> None:
    ctx.promise("never")


def test_the_workflow_and_the_handle_see_the_reason(engine: Runtime) -> None:
    h = fn.start_workflow(catches, workflow_id="cr-1")
    wait_until(lambda: fn.pending_promises("cr-1"), timeout=30)
    fn.cancel_workflow("cr-1", reason="budget exceeded")
    wait_until(lambda: fn.get_run("cr-1", events=False).status.is_terminal, timeout=30)
    info = fn.get_run("cr-1")
    assert info.status is fn.RunStatus.CANCELLED
    assert info.output == "reason=budget exceeded"
    assert info.cancel_reason == "budget exceeded"
    assert fold(events_of(info.events)).cancel_reason == "budget exceeded"
    with pytest.raises(fn.WorkflowCancelled) as caught:
        h.result(timeout=30)
    assert caught.value.reason == "budget exceeded"
    assert "budget exceeded" in str(caught.value)


def test_a_reason_given_in_another_process_reaches_the_running_workflow(
    engine: Runtime, store_path: Path
) -> None:
    h = fn.start_workflow(waits, workflow_id="cr-2")
    wait_until(lambda: fn.pending_promises("cr-2"), timeout=30)
    done = subprocess.run(
        [*CLI, "cancel", "cr-2", "--reason", "user asked", "--store", str(store_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with pytest.raises(fn.WorkflowCancelled) as caught:
        h.result(timeout=30)
    assert caught.value.reason == "user asked"
    assert fn.get_run("cr-2").cancel_reason == "user asked"


def test_the_handle_cancels_with_a_reason(engine: Runtime) -> None:
    h = fn.start_workflow(catches, workflow_id="cr-3")
    wait_until(lambda: fn.pending_promises("cr-3"), timeout=30)
    h.cancel("not needed")
    wait_until(lambda: fn.get_run("cr-3", events=False).status.is_terminal, timeout=30)
    assert fn.get_run("cr-3").output == "reason=not needed"


def test_the_cancel_magic_takes_a_reason(engine: Runtime) -> None:
    from flovyn_nb.kernel.magics import flovyn_magic

    fn.start_workflow(catches, workflow_id="cr-4")
    wait_until(lambda: fn.pending_promises("cr-4"), timeout=30)
    flovyn_magic('cancel cr-4 "quota hit"')
    wait_until(lambda: fn.get_run("cr-4", events=False).status.is_terminal, timeout=30)
    assert fn.get_run("cr-4").output == "reason=quota hit"
