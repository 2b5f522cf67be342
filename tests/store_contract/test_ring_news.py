"""Store contract: a doorbell ring says what its commit did (``flovyn_nb.store.news``), so
that the server's live feed tells browsers without reading the store."""

from __future__ import annotations

import time

from contract_helpers import StoreFactory, end, event, promise, settle, start

from flovyn_nb.model import RunStatus
from flovyn_nb.store import Change, DoorbellWatcher, NewRun, RunUpdate
from flovyn_nb.store.news import News
from flovyn_nb.testing import wait_until


def born(run: NewRun) -> News:
    """The record of a run its commit created: with what a runs list shows of it."""
    return News(
        run.execution_id,
        run.workflow_id,
        "RUNNING",
        kind=run.kind,
        created_at=run.now,
        queue=run.queue,
    )


def heard(watcher: DoorbellWatcher) -> list[News] | None:
    """Wait for a ring by another handle; what it said."""
    wait_until(watcher.rung_by_others, timeout=30, message="the doorbell never rang")
    return watcher.news()


def test_a_ring_by_another_handle_names_the_run_its_status_and_its_promises(
    make_store: StoreFactory,
) -> None:
    watching, writing = make_store(), make_store()
    others = watching.doorbell.watcher()
    own = writing.doorbell.watcher()
    assert others.news() == []  # the first look starts keeping them: nothing rang yet
    run = start(writing, "w-news")
    assert heard(others) == [born(run)]
    assert not own.rung_by_others()  # its own rings, with records in them, still do not count

    writing.commit(
        [
            Change(
                events=[event(run.execution_id, 2, "PROMISE_CREATED")],
                run_update=RunUpdate(run.execution_id, RunStatus.WAITING, time.time()),
            )
        ]
    )
    assert heard(others) == [News(run.execution_id, status="WAITING")]
    promise(writing, run, "approve")
    assert heard(others) == [News(run.execution_id, promise="approve", promise_status="PENDING")]
    # An inbox write by a process that knows only the workflow id.
    writing.commit([Change(intents=[settle("w-news", "approve", True)])])
    assert heard(others) == [News("", "w-news", promise="approve", promise_status="RESOLVED")]
    writing.commit([Change(events=[event(run.execution_id, 3, "PROMISE_RESOLVED")])])
    assert heard(others) == [News(run.execution_id)]  # only its history moved
    end(writing, run, RunStatus.FAILED)
    assert heard(others) == [News(run.execution_id, status="FAILED")]
    assert not own.rung_by_others()


def test_a_ring_a_record_cannot_describe_says_so(make_store: StoreFactory) -> None:
    watching, writing = make_store(), make_store()
    run = start(writing, "w-news-unknown")
    promise(writing, run, "late")
    others = watching.doorbell.watcher()
    others.news()
    # Timeouts decided in memory name promise ids only: the watcher must read the store.
    writing.commit([Change(timed_out=[f"{run.execution_id}:late"])])
    assert heard(others) is None
    # Then records again; a commit that changed nothing shown says "nothing".
    end(writing, run)
    assert heard(others) == [News(run.execution_id, status="COMPLETED")]
    writing.commit([Change(intents=[])])
    assert heard(others) == []


def test_the_first_look_at_the_news_after_rings_is_right_or_says_it_cannot_tell(
    make_store: StoreFactory,
) -> None:
    watching, writing = make_store(), make_store()
    others = watching.doorbell.watcher()
    run = start(writing, "w-news-late")
    wait_until(others.rung_by_others, timeout=30, message="the doorbell never rang")
    # Rang before anybody asked: a backend may not have kept it (DuckDB reads the bell
    # file only for a watcher that asked), but it never says something wrong.
    assert others.news() in (None, [born(run)])
    start(writing, "w-news-later")
    said = heard(others)
    assert said is not None and [n.workflow_id for n in said] == ["w-news-later"]
