"""A run panel says where a run no live engine holds waits: its queue, and whether any
live engine serves it (or what to start so that one does). Real engines: this process's
(serving the default queue only) and ``flovyn-nb worker`` processes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import flovyn_nb as fn
from flovyn_nb.testing import temporary_engine, wait_until
from flovyn_nb.widgets.board import Dashboard
from flovyn_nb.widgets.panel import RunPanel

PROCS = Path(__file__).parent / "worker_procs"
sys.path.insert(0, str(PROCS))

import worker_defs
from worker_proc import Worker


@pytest.fixture
def store_path(store_target: Path | str) -> Path | str:
    return store_target


@pytest.fixture
def effects(tmp_path: Path) -> Path:
    folder = tmp_path / "effects"
    folder.mkdir()
    return folder


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


@pytest.fixture
def panels() -> Iterator[list[Any]]:
    made: list[Any] = []
    yield made
    for panel in made:
        panel.close()


def _queue(panel: RunPanel) -> dict[str, Any] | None:
    queue: dict[str, Any] | None = panel.data.get("queue")
    return queue


def test_a_run_in_a_queue_no_engine_serves_says_so_until_a_worker_takes_it(
    store_path: Path | str, effects: Path, workers: list[Worker], panels: list[Any]
) -> None:
    with temporary_engine(store=store_path):  # serves "default" only
        fn.start_workflow(worker_defs.job, "qa", workflow_id="qa", queue="gpu")
        panel = RunPanel("qa")
        panels.append(panel)
        queue = _queue(panel)
        assert queue is not None and queue["name"] == "gpu", panel.data
        assert not queue["served"] and queue["engines"] == 0
        expected = (
            "waiting in queue 'gpu' — no engine serves it (workflow 'wk-job' is loaded on "
            "queue 'default' only); start `flovyn-nb worker MODULE --queue gpu`"
        )
        assert queue["text"] == expected
        assert f"\n  {expected}" in repr(panel)
        assert "no engine serves it" in panel._repr_mimebundle_()["text/html"]
        # The dashboard's row and its panel of the clicked run say it too.
        board = Dashboard()
        panels.append(board)
        [row] = [r for r in board.data["runs"] if r["workflow_id"] == "qa"]
        assert row["stuck"] == expected
        board._on_msg(board, {"action": "select", "workflow_id": "qa"}, [])
        wait_until(lambda: board.data["detail"] and board.data["detail"]["queue"], timeout=30,
                   message="the dashboard's run never said where it waits")  # fmt: skip
        assert board.data["detail"]["queue"]["text"] == expected

        # Started as the panel says: the worker takes the run, and the line goes away.
        workers.append(Worker(store_path, effects, "--queue", "gpu"))
        assert fn.get_handle("qa").result(timeout=60) == ["qa:0", "qa:1", "qa:2"]
        wait_until(lambda: panel.data["status"] == "COMPLETED", timeout=30,
                   message="the panel never showed the completion")  # fmt: skip
        assert _queue(panel) is None
        assert "waiting in queue" not in repr(panel)


def test_a_run_a_busy_worker_serves_says_how_many_engines_serve_its_queue(
    store_path: Path | str, effects: Path, workers: list[Worker], panels: list[Any]
) -> None:
    with temporary_engine(store=store_path):
        worker = Worker(store_path, effects, "--queue", "gpu", "--concurrency", "1")
        workers.append(worker)
        worker.wait_for("serving .*wk-job")
        fn.start_workflow(worker_defs.gate_flow, "qg", workflow_id="qg", queue="gpu")
        wait_until(lambda: (effects / "qg-gated-started").exists(), timeout=60,
                   message=f"the gated step never started: {worker.lines}")  # fmt: skip
        fn.start_workflow(worker_defs.job, "qb", workflow_id="qb", queue="gpu")
        panel = RunPanel("qb")
        panels.append(panel)
        queue = _queue(panel)
        assert queue is not None, panel.data
        assert queue == {"name": "gpu", "served": True, "engines": 1,
                         "text": "waiting in queue 'gpu' — served by 1 engine"}  # fmt: skip
        (effects / "qg.gate").touch()  # the worker's one slot frees: it takes qb
        assert fn.get_handle("qb").result(timeout=60) == ["qb:0", "qb:1", "qb:2"]
        wait_until(lambda: panel.data["status"] == "COMPLETED", timeout=30,
                   message="the panel never showed the completion")  # fmt: skip
        assert _queue(panel) is None
    assert worker.claimed() == ["qg", "qb"]


def test_a_run_whose_workflow_no_engine_has_loaded_says_to_load_it(
    store_path: Path | str, panels: list[Any]
) -> None:
    with temporary_engine(store=store_path):
        fn.start_workflow(worker_defs.await_flow, "qw", workflow_id="qw")
        wait_until(lambda: fn.pending_promises("qw"), timeout=30)
    # The engine stopped and handed its run back; nothing else has the workflow.
    panel = RunPanel("qw", store=store_path)
    panels.append(panel)
    queue = _queue(panel)
    assert queue is not None and not queue["served"], panel.data
    assert queue["text"] == (
        "waiting in queue 'default' — no engine serves it: no kernel or worker has workflow "
        "'wk-await' loaded; run its defining cell or start `flovyn-nb worker MODULE`"
    )
