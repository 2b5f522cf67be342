"""Errors are typed where they are raised; nothing is recognised later by its message."""

from __future__ import annotations

from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb.definitions import registry
from flovyn_nb.errors import InvalidInput, UnknownTask, UnknownWorkflow, UnknownWorkflowKind
from flovyn_nb.model import RunStatus
from flovyn_nb.testing import wait_until


def test_missing_definitions_raise_their_own_types() -> None:
    with pytest.raises(UnknownTask, match="no task named 'te-ghost'") as task:
        registry.task("te-ghost")
    assert task.value.name == "te-ghost"
    assert isinstance(task.value, InvalidInput)  # what callers caught before: still caught
    with pytest.raises(UnknownWorkflowKind, match="no workflow named 'te-ghost'") as workflow:
        registry.workflow("te-ghost")
    assert workflow.value.kind == "te-ghost"
    assert isinstance(workflow.value, UnknownWorkflow)


_replaying: list[bool] = []


@fn.workflow(name="te-says-no-task")
async def says_no_task(ctx: fn.WorkflowContext) -> str:
    if _replaying:
        # The workflow's own error, worded like a missing definition: it fails the run;
        # only a real missing definition pauses a replay.
        raise InvalidInput("no task named 'te-elsewhere' is registered (the workflow says)")
    return str(await ctx.promise("go"))


def test_an_error_worded_like_a_missing_definition_fails_the_replay(store_path: Path) -> None:
    _replaying.clear()
    fn.start(store_path)
    fn.start_workflow(says_no_task, workflow_id="te-1")
    wait_until(lambda: fn.pending_promises("te-1"))
    fn.stop()

    _replaying.append(True)
    try:
        with fn.start(store_path):
            with pytest.raises(fn.WorkflowFailed, match="no task named 'te-elsewhere'"):
                fn.get_handle("te-1").result(timeout=30)
            assert fn.get_run("te-1").status is RunStatus.FAILED
    finally:
        _replaying.clear()
