"""Store contract: :meth:`Store.query_runs`, the paged run list of the dashboard
(filters, search, sort, pages and counts computed by the backend)."""

from __future__ import annotations

import pytest
from contract_helpers import new_run

from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunStatus
from flovyn_nb.store import Change, RunQuery, RunUpdate, Store

T0 = 1_800_000_000.0


@pytest.fixture
def runs(store: Store) -> Store:
    """12 runs, one a minute: kinds alternate etl/report, every third failed after
    i seconds, one id with a LIKE wildcard in it."""
    for i in range(12):
        workflow_id = "odd_100%" if i == 11 else f"run-{i:02d}"
        run = new_run(workflow_id, kind="etl" if i % 2 == 0 else "report", now=T0 + 60 * i)
        changes = [Change(new_run=run)]
        if i % 3 == 0:
            error = '{"type": "ValueError", "message": "bad row"}'
            update = RunUpdate(run.execution_id, RunStatus.FAILED, T0 + 60 * i + i, None, error)
            changes.append(Change(run_update=update))
        store.commit(changes)
    return store


def ids(store: Store, **query: object) -> list[str]:
    return [r.workflow_id for r in store.query_runs(RunQuery(**query)).runs]  # type: ignore[arg-type]


def test_newest_first_in_pages_that_do_not_overlap(runs: Store) -> None:
    first = runs.query_runs(RunQuery(limit=5))
    assert first.total == 12
    assert [r.workflow_id for r in first.runs] == [
        "odd_100%",
        "run-10",
        "run-09",
        "run-08",
        "run-07",
    ]
    assert ids(runs, limit=5, offset=5) == ["run-06", "run-05", "run-04", "run-03", "run-02"]
    assert ids(runs, limit=5, offset=10) == ["run-01", "run-00"]
    assert ids(runs, limit=5, offset=20) == []


def test_status_and_kind_filters_with_counts_for_the_chips(runs: Store) -> None:
    page = runs.query_runs(RunQuery(statuses=("FAILED",), kind="etl"))
    assert [r.workflow_id for r in page.runs] == ["run-06", "run-00"]
    assert page.total == 2
    # Counts ignore the status filter (each chip says how many it would show).
    assert page.counts == {"FAILED": 2, "RUNNING": 4}
    assert page.runs[0].error is not None and page.runs[0].error.message == "bad row"


def test_search_is_a_case_insensitive_substring_with_literal_wildcards(runs: Store) -> None:
    assert ids(runs, search="RUN-0") == [f"run-0{i}" for i in range(9, -1, -1)]
    assert ids(runs, search="100%") == ["odd_100%"]
    assert ids(runs, search="_1") == ["odd_100%"]  # "_" is not "any character"
    assert ids(runs, search="repo", limit=2) == ["odd_100%", "run-09"]  # the kind matches


def test_time_window_and_other_sorts(runs: Store) -> None:
    assert ids(runs, created_from=T0 + 120, created_to=T0 + 240, descending=False) == [
        "run-02",
        "run-03",
    ]
    # Duration: the failed runs took i seconds, the others none yet.
    assert ids(runs, sort="duration", limit=3) == ["run-09", "run-06", "run-03"]
    assert ids(runs, sort="workflow_id", descending=False, limit=2) == ["odd_100%", "run-00"]
    assert ids(runs, sort="status", descending=False, limit=2) == ["run-00", "run-03"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (RunQuery(sort="colour"), "unknown sort 'colour'"),
        (RunQuery(offset=-1), "offset must be 0 or more"),
        (RunQuery(limit=0), "limit must be between 1 and 1000"),
    ],
)
def test_bad_queries_are_refused(store: Store, query: RunQuery, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        store.query_runs(query)
