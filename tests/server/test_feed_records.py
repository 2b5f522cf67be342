"""The live feed's bookkeeping (``flovyn_nb/server/feed.py``): what the doorbell's records
say becomes messages without a read, and a read never undoes a newer record."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flovyn_nb.feed import Change
from flovyn_nb.model import RunInfo, RunStatus
from flovyn_nb.server.door import Door
from flovyn_nb.server.feed import Broadcaster, _Found
from flovyn_nb.store.news import News

AT = datetime(2026, 1, 1, tzinfo=UTC)


def info(workflow_id: str, status: RunStatus, owner: str | None = "engine") -> RunInfo:
    return RunInfo(
        workflow_id=workflow_id,
        execution_id=f"x-{workflow_id}",
        kind="k",
        status=status,
        owner=owner,
        created_at=AT,
        updated_at=AT,
    )


def broadcaster(tmp_path: Path, *runs: RunInfo) -> Broadcaster:
    feed = Broadcaster(Door(str(tmp_path / "feed.duckdb")))
    found = _Found({r.workflow_id: r for r in runs}, set())
    assert feed._compare(found, feed._generation) == []  # the baseline says nothing
    return feed


def run_changed(wid: str, status: str, moved: bool) -> dict[str, object]:
    return {"type": "run-changed", "workflowId": wid, "status": status, "statusChanged": moved}


def test_records_become_messages_once_each(tmp_path: Path) -> None:
    feed = broadcaster(tmp_path, info("old", RunStatus.RUNNING))
    assert feed._tell([News("x-new", "new", "RUNNING"), News("x-new")]) == [
        run_changed("new", "RUNNING", True)
    ]
    assert feed._tell([News("x-old")]) == [run_changed("old", "RUNNING", False)]
    waiting = [News("x-new", promise="ok", promise_status="PENDING")]
    assert feed._tell(waiting) == [
        run_changed("new", "RUNNING", False),
        {"type": "promise-waiting", "workflowId": "new", "name": "ok"},
    ]
    assert feed._tell(waiting) == [run_changed("new", "RUNNING", False)]  # said once
    settled = [News("", "new", promise="ok", promise_status="RESOLVED")]
    assert feed._tell(settled) == [run_changed("new", "RUNNING", False)]
    assert feed._tell([News("x-new", status="COMPLETED")]) == [
        run_changed("new", "COMPLETED", True)
    ]
    assert feed._promises == set()


def test_a_record_about_a_run_the_feed_has_not_met_asks_for_a_read(tmp_path: Path) -> None:
    feed = broadcaster(tmp_path, info("old", RunStatus.RUNNING))
    assert feed._tell([News("x-new", "new", "RUNNING"), News("x-stranger")]) is None
    assert "new" not in feed._runs  # nothing of it was taken in
    assert feed._tell([News("", "stranger", promise="p", promise_status="RESOLVED")]) is None


def test_a_read_that_started_before_a_record_does_not_undo_it(tmp_path: Path) -> None:
    feed = broadcaster(tmp_path, info("run", RunStatus.RUNNING))
    started = feed._generation  # a read starts, and finds the run still running...
    assert feed._tell([News("x-run", status="COMPLETED")]) == [
        run_changed("run", "COMPLETED", True)
    ]
    found = _Found({"run": info("run", RunStatus.RUNNING)}, {("run", "p")})
    assert feed._compare(found, started) == []  # ...which the record said otherwise since
    assert feed._runs["run"][0] is RunStatus.COMPLETED
    # A read that started after it is believed again.
    later = _Found({"run": info("run", RunStatus.FAILED)}, set())
    assert feed._compare(later, feed._generation) == [run_changed("run", "FAILED", True)]


async def test_a_busy_run_s_progress_goes_out_at_most_once_per_interval_the_last_one_too(
    tmp_path: Path,
) -> None:
    feed = broadcaster(tmp_path, info("busy", RunStatus.RUNNING), info("calm", RunStatus.RUNNING))
    feed.min_interval = 0.2
    feed._loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    feed._queues.add(queue)
    for _ in range(5):  # five commits of its steps, heard in quick succession
        feed._heard(Change("bell", "", "store", [News("x-busy")]))
    feed._heard(Change("bell", "", "store", [News("x-calm", status="WAITING")]))
    got = [queue.get_nowait() for _ in range(queue.qsize())]
    assert got == [run_changed("busy", "RUNNING", False), run_changed("calm", "WAITING", True)]
    # The held ones go out as one, later (the run view then shows the last step).
    assert await asyncio.wait_for(queue.get(), 30) == run_changed("busy", "RUNNING", False)
    assert queue.empty() and not feed._progress_held  # nothing else is due


def test_a_created_run_s_message_carries_its_row_as_get_runs_shows_it(tmp_path: Path) -> None:
    from flovyn_nb.server.shapes import run_row

    feed = broadcaster(tmp_path, info("old", RunStatus.RUNNING))
    born = News("x-new", "new", "RUNNING", kind="report", created_at=1764000000.125, queue="gpu")
    (message,) = feed._tell([born, News("x-new")])
    stored = RunInfo(
        workflow_id="new",
        execution_id="x-new",
        kind="report",
        status=RunStatus.RUNNING,
        created_at=datetime.fromtimestamp(1764000000.125, UTC),
        updated_at=AT,
        queue="gpu",
    )
    row = run_row(stored)
    assert message == run_changed("new", "RUNNING", True) | {
        "created": True,
        "executionId": row["executionId"],
        "kind": row["kind"],
        "createdAt": row["createdAt"],
        "queue": row["queue"],
    }
    # Created and ended within one ring: one message, its last status.
    quick = News("x-quick", "quick", "RUNNING", kind="report", created_at=1.5, queue="default")
    (message,) = feed._tell([quick, News("x-quick", status="COMPLETED")])
    assert message["status"] == "COMPLETED" and message["created"] is True
    # An older writer's record (no details) and a later change of the run: no "created".
    assert feed._tell([News("x-older", "older", "RUNNING")]) == [
        run_changed("older", "RUNNING", True)
    ]
    assert feed._tell([News("x-new", status="WAITING")]) == [run_changed("new", "WAITING", True)]
