"""The PostgreSQL statements written for store changes of other branches
(``store/postgres/incoming.py``), checked on the session's server before those branches
merge: each DDL step applies, and each statement does what the DuckDB one does."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from store_contract.contract_helpers import start

from flovyn_nb.model import RunStatus
from flovyn_nb.store import Change, RunUpdate, open_store
from flovyn_nb.store.postgres import PostgresStore, incoming


@pytest.fixture
def store(pg_url: str) -> Any:
    opened = open_store(pg_url)
    assert isinstance(opened, PostgresStore)
    steps = incoming.DEFINITIONS + incoming.QUEUES  # not yet in MIGRATIONS

    def migrate(con: Any) -> None:
        for statement in steps:
            con.execute(statement)

    opened.transaction(migrate)
    yield opened
    opened.close()


def test_a_page_of_runs_filters_sorts_and_counts(store: PostgresStore) -> None:
    for n in range(5):
        start(store, f"page_{n}", kind="a" if n % 2 else "b")
    store.commit([Change(run_update=RunUpdate(store.find_run("page_0").id,  # type: ignore[union-attr]
                                              RunStatus.COMPLETED, time.time()))])  # fmt: skip
    query = SimpleNamespace(statuses=("RUNNING",), kind=None, search="PAGE_", created_from=None,
                            created_to=None, sort="workflow_id", descending=False, offset=1,
                            limit=2)  # fmt: skip
    runs, total, counts = store.read(lambda con: incoming.query_runs(con, query))
    assert [r.workflow_id for r in runs] == ["page_2", "page_3"]
    assert total == 4 and counts == {"RUNNING": 4, "COMPLETED": 1}
    literal = SimpleNamespace(**{**query.__dict__, "search": "e%", "statuses": ()})
    assert store.read(lambda con: incoming.query_runs(con, literal))[1] == 0  # % is literal


# -- issue 17 (i17-worker): definitions and queues -------------------------------------------

from flovyn_nb.store.postgres import incoming_queues as iq


def test_definitions_are_versioned_by_source_and_list_their_servers(
    store: PostgresStore,
) -> None:
    store.register_engine("e1", pid=1, host="h", proc_start=None, now=time.time())

    def define(source_hash: str) -> SimpleNamespace:
        return SimpleNamespace(type="workflow", kind="wf", source_hash=source_hash,
                               description=None, source="def wf(): ...",
                               input_schema_json='{"type": "integer"}', output_schema_json=None)  # fmt: skip

    for source_hash in ("a", "a", "b"):
        d = define(source_hash)
        store.transaction(
            lambda con, d=d: iq.record_definitions(con, [d], "e1", ["q"], time.time())
        )
    rows = store.read(lambda con: iq.list_definitions(con, type=None, kind="wf", all_versions=True))
    assert [(r[2], r[3]) for r in rows] == [(2, "b"), (1, "a")]
    [latest] = store.read(
        lambda con: iq.list_definitions(con, type="workflow", kind=None, all_versions=False)
    )
    assert latest[2] == 2 and latest[6] == {"type": "integer"}
    assert [(s[0], s[5], s[6]) for s in latest[10]] == [("e1", "b", ["q"])]


def test_concurrent_claimers_keep_a_queues_concurrency(store: PostgresStore, pg_url: str) -> None:
    queue = SimpleNamespace(name="q", concurrency=2, worker_concurrency=None, rate_limit=None,
                            rate_period=None)  # fmt: skip
    store.transaction(lambda con: iq.set_queue(con, queue, time.time()))
    for n in range(6):
        start(store, f"q-{n}")
    store.transaction(
        lambda con: con.execute("UPDATE workflow_executions SET queue = 'q', claimed_at = NULL")
    )
    others = [open_store(pg_url) for _ in range(3)]
    taken: list[str] = []
    alive = [f"e{i}" for i in range(len(others))]
    barrier = threading.Barrier(len(others))

    def claim(handle: Any, engine: str) -> None:
        def run(con: Any) -> None:
            rows, _ = iq.pick(con, engine_id=engine, kinds=["k"], queues=["q"], alive=alive,
                              now=time.time())  # fmt: skip
            taken.extend(iq.take(con, [r[0] for r in rows], engine, alive, time.time()))

        barrier.wait()
        handle.transaction(run)

    threads = [threading.Thread(target=claim, args=(h, f"e{i}")) for i, h in enumerate(others)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for handle in others:
        handle.close()
    assert len(taken) == 2 == len(set(taken))
    assert store.read(lambda con: iq.list_queues(con)) == [("q", 2, None, None, None)]
