"""The run row (``workflow_executions``): how it follows a run's events.

Starts that arrive together share one INSERT (a start is durable by its row). After that
the row follows the run's events lazily: RUNNING <-> WAITING moves and the end reach it at
most ``STATUS_DELAY`` later, many runs in one UPDATE, and a move that is undone before
then writes nothing.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from engine_internals import running_engine

import flovyn_nb as fn
from flovyn_nb.engine import writer as writer_module
from flovyn_nb.engine.engine import Engine
from flovyn_nb.engine.writer import STATUS_DELAY
from flovyn_nb.model import RunStatus
from flovyn_nb.store import RunUpdate
from flovyn_nb.store.duckdb import DuckDBStore, ops
from flovyn_nb.store.duckdb.ops import Con
from flovyn_nb.testing import temporary_engine, wait_until


@pytest.fixture
def engine(engine: fn.Runtime) -> Engine:
    """These tests pin the writer's mechanism (its batches, its commits, a move undone on
    the loop): they need the engine object itself, not the public Runtime."""
    return running_engine()


@fn.workflow(name="rows-wait")
async def wait_for_go(ctx: fn.WorkflowContext) -> str:
    value: str = await ctx.promise("go")
    return value


@fn.workflow(name="rows-quick")
async def quick(ctx: fn.WorkflowContext, n: int) -> int:
    return n


def _row(engine: Engine, workflow_id: str) -> tuple[str, Any, Any]:
    """The row as stored, read without flushing the engine's writer."""

    def read(con: Con) -> tuple[str, Any, Any]:
        row = con.execute(
            "SELECT status, output, owner FROM workflow_executions WHERE workflow_id = ?",
            [workflow_id],
        ).fetchone()
        assert row is not None, f"no row for {workflow_id}"
        return row[0], row[1], row[2]

    return engine.store.read(read)


def test_the_row_says_waiting_soon_without_a_flush(engine: Engine) -> None:
    handle = fn.start_workflow(wait_for_go, workflow_id="rows-1")
    assert _row(engine, "rows-1")[0] in ("RUNNING", "WAITING")  # durable from the start
    wait_until(
        lambda: _row(engine, "rows-1")[0] == "WAITING",
        timeout=STATUS_DELAY + 2,
        message="the run row never said WAITING",
    )
    fn.resolve_promise("rows-1", "go", "yes")
    assert handle.result(timeout=30) == "yes"
    # The terminal event is durable before result() returns; the row follows it.
    wait_until(
        lambda: _row(engine, "rows-1") == ("COMPLETED", '"yes"', None),
        timeout=STATUS_DELAY + 2,
        message="the run row never said how the run ended",
    )


def test_a_status_move_never_overwrites_the_end(engine: Engine) -> None:
    updates: list[tuple[str, str]] = []
    real = ops.update_runs

    def recording(con: Con, batch: list[RunUpdate]) -> None:
        updates.extend((u.execution_id, u.status.value) for u in batch)
        real(con, batch)

    ops.update_runs = recording  # type: ignore[assignment]
    try:
        handle = fn.start_workflow(wait_for_go, workflow_id="rows-2")
        wait_until(lambda: fn.pending_promises("rows-2"), message="promise never created")
        # Resolve at once: the WAITING -> RUNNING moves are still inside STATUS_DELAY.
        fn.resolve_promise("rows-2", "go", "done")
        assert handle.result(timeout=30) == "done"
        wait_until(lambda: engine.writer.idle, message="the writer never went idle")
    finally:
        ops.update_runs = real  # type: ignore[assignment]
    assert _row(engine, "rows-2")[0] == "COMPLETED"
    mine = [status for execution_id, status in updates if execution_id == handle.execution_id]
    assert mine[-1] == "COMPLETED", mine
    assert mine.count("COMPLETED") == 1, mine


def test_moves_that_cancel_out_write_nothing(engine: Engine) -> None:
    handle = fn.start_workflow(wait_for_go, workflow_id="rows-3")
    wait_until(lambda: fn.pending_promises("rows-3"), message="promise never created")
    run = engine.runs[handle.execution_id]
    done = threading.Event()
    result: list[Any] = []

    async def flip() -> None:
        # On the loop, between two writer turns: WAITING -> RUNNING -> WAITING.
        result.append(run.row_update())  # what the row would get now: WAITING (or None)
        run.move(RunStatus.RUNNING)
        run.move(RunStatus.WAITING)
        result.append(run.row_update())
        done.set()

    engine.thread.call(flip)
    assert done.wait(30)
    assert result[1] is None, "a move back to what the row says must write nothing"
    fn.resolve_promise("rows-3", "go", "ok")
    assert handle.result(timeout=30) == "ok"


def test_starts_from_many_threads_share_inserts_and_stay_idempotent(engine: Engine) -> None:
    ids = [f"rows-many-{i % 50}" for i in range(200)]  # each id started 4 times, racing
    commits = engine.writer.commits
    with ThreadPoolExecutor(max_workers=8) as pool:
        handles = list(pool.map(lambda wid: fn.start_workflow(quick, 7, workflow_id=wid), ids))
    by_id: dict[str, set[str]] = {}
    for wid, handle in zip(ids, handles, strict=True):
        by_id.setdefault(wid, set()).add(handle.execution_id)
        assert handle.result(timeout=30) == 7
    assert all(len(executions) == 1 for executions in by_id.values()), by_id
    assert engine.writer.commits - commits < 200, "starts did not share commits"
    rows = engine.store.read(
        lambda con: con.execute(
            "SELECT count(*), count(DISTINCT workflow_id) FROM workflow_executions "
            "WHERE workflow_id LIKE 'rows-many-%' AND status = 'COMPLETED'"
        ).fetchone()
    )
    assert rows == (50, 50)


def _count_start_inserts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many starts each commit that inserted run rows carried."""
    sizes: list[int] = []
    original = ops.insert_runs

    def counting(con: Con, runs: Any) -> None:
        if runs:
            sizes.append(len(runs))
        original(con, runs)

    monkeypatch.setattr(ops, "insert_runs", counting)
    return sizes


def test_threads_starting_runs_in_a_loop_are_answered_together(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that callers wait for waits (a moment) for the callers the previous commit
    answered: they are on their way back with their next start. Eight threads then share
    each commit instead of taking turns in two groups of four."""
    monkeypatch.setattr(writer_module, "GATHER", 0.2)  # generous: any machine comes back
    sizes = _count_start_inserts(monkeypatch)
    threads = 8
    with ThreadPoolExecutor(max_workers=threads) as pool:
        handles = list(pool.map(lambda n: fn.start_workflow(quick, n), range(40 * threads)))
    assert [h.result(timeout=30) for h in handles] == list(range(40 * threads))
    steady = sizes[2:-2]  # the threads' first and last starts come and go unevenly
    assert sum(steady) / len(steady) >= threads - 0.5, sizes


def test_a_lone_caller_never_waits_for_company(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One thread starting runs back to back (or starting one and awaiting its result)
    is the only caller there is: its commits never wait for others."""
    # Any wait for company (60 s) would outlast the generous deadline below: not a speed
    # check (40 runs take ~2 s on an idle machine).
    monkeypatch.setattr(writer_module, "GATHER", 60.0)
    sizes = _count_start_inserts(monkeypatch)
    results: list[object] = []

    def caller() -> None:
        try:
            # One at a time: each start's result before the next start.
            results.extend(fn.start_workflow(quick, n).result(timeout=40) for n in range(20))
            handles = [fn.start_workflow(quick, n) for n in range(20)]
            results.extend(h.result(timeout=40) for h in handles)
        except BaseException as exc:  # shown by the assertion below
            results.append(exc)

    thread = threading.Thread(target=caller, daemon=True)
    thread.start()
    thread.join(timeout=40)
    assert not thread.is_alive(), "a commit waited for callers that never came"
    assert results == list(range(20)) * 2
    assert sizes == [1] * 40


def test_a_row_left_behind_by_a_crash_is_repaired_from_the_terminal_event(
    store_path: Any,
) -> None:
    # The process died after the terminal event committed, before the row followed it:
    # simulated by putting the row back the way it was while the run was live.
    with temporary_engine(store=store_path):
        assert fn.start_workflow(quick, 41, workflow_id="rows-crash").result(timeout=30) == 41
    store = DuckDBStore(store_path)
    try:
        store.transaction(
            lambda con: con.execute(
                "UPDATE workflow_executions SET status = 'RUNNING', output = NULL, "
                "owner = 'a-dead-engine' WHERE workflow_id = 'rows-crash'"
            )
        )
    finally:
        store.close()
    with temporary_engine(store=store_path):
        engine = running_engine()
        wait_until(
            lambda: _row(engine, "rows-crash") == ("COMPLETED", "41", None),
            message="the row was not repaired",
        )
        run = fn.get_run("rows-crash")
        assert [e.type for e in run.events].count("WORKFLOW_COMPLETED") == 1  # not run again
        assert fn.get_handle("rows-crash").result(timeout=30) == 41


def test_a_fault_in_the_writer_fails_that_commit_and_the_writer_goes_on(engine: Engine) -> None:
    real = engine.writer._commit_batch
    calls = 0

    def broken(batch: list[Any]) -> list[Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk on fire")
        return real(batch)

    engine.writer._commit_batch = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            fn.start_workflow(quick, 1, workflow_id="rows-fault")  # never reported as started
        handle = fn.start_workflow(quick, 2, workflow_id="rows-after-fault")
        assert handle.result(timeout=30) == 2
    finally:
        engine.writer._commit_batch = real  # type: ignore[method-assign]
    assert fn.list_runs(kind="rows-quick", status="COMPLETED")
    with pytest.raises(fn.UnknownWorkflow):
        fn.get_run("rows-fault")
