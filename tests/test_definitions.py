"""Decorators, signatures and the registry."""

from __future__ import annotations

import pytest

import flovyn_nb as fn
from flovyn_nb.definitions import registry


def test_decorators_accept_sync_and_async_functions() -> None:
    @fn.task
    def plain(x: int) -> int:
        return x

    @fn.task(name="d-async")
    async def asynchronous(ctx: fn.TaskContext, x: int) -> int:
        return x

    @fn.workflow
    def sync_wf(ctx: fn.SyncWorkflowContext) -> None: ...

    @fn.workflow(name="d-async-wf")
    async def async_wf(ctx: fn.WorkflowContext, x: int) -> int:
        return x

    assert (plain.name, plain.is_async, plain.takes_ctx, plain.input_type) == (
        "plain",
        False,
        False,
        int,
    )
    assert (asynchronous.is_async, asynchronous.takes_ctx, asynchronous.return_type) == (
        True,
        True,
        int,
    )
    assert plain(3) == 3  # a task is still a plain function when called directly
    assert (sync_wf.is_async, sync_wf.takes_input) == (False, False)
    assert registry.workflow("d-async-wf") is async_wf
    with pytest.raises(TypeError, match="start it with"):
        async_wf(None, 1)


def test_redefining_replaces_and_keeps_a_version() -> None:
    @fn.workflow(name="d-redef")
    async def first(ctx: fn.WorkflowContext) -> int:
        return 1

    @fn.workflow(name="d-redef")
    async def second(ctx: fn.WorkflowContext) -> int:
        return 2

    assert registry.workflow("d-redef") is second
    assert second.version == first.version + 1
    assert second.source_hash != first.source_hash


def test_bad_signatures_are_explained() -> None:
    with pytest.raises(fn.InvalidInput, match="must take the workflow context"):

        @fn.workflow(name="d-no-ctx")
        async def no_ctx(order: dict) -> None: ...

    with pytest.raises(fn.InvalidInput, match="takes 2 inputs"):

        @fn.task(name="d-two")
        def two(a: int, b: int) -> None: ...

    with pytest.raises(fn.InvalidInput, match="no task named 'd-missing'"):
        registry.task("d-missing")
