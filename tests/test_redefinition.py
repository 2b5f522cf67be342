"""The redefinition check reads the source hash each run started with from its run row."""

from __future__ import annotations

from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.kernel.redefinition import changed_runs
from flovyn_nb.model import ACTIVE_STATUSES, RunStatus
from flovyn_nb.store import Change, NewRun, RunUpdate, open_store


@fn.workflow(name="hashed")
async def hashed(ctx: fn.WorkflowContext, value: int) -> int:
    return value


def test_runs_started_with_other_code_are_found_from_their_rows(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [  # (workflow id, kind, source hash, created at); none has events yet
        ("same", "hashed", hashed.source_hash, 1.0),
        ("older", "hashed", "0ld", 2.0),
        ("unknown", "hashed", None, 3.0),
        ("ended", "hashed", "0ld", 4.0),
        ("other-kind", "other", "0ld", 5.0),
    ]

    store = open_store(store_path)
    try:
        store.commit(
            [
                Change(new_run=NewRun(f"x-{wid}", wid, kind, "1", source_hash, None, None, created))
                for wid, kind, source_hash, created in rows
            ]
        )
        store.commit([Change(run_update=RunUpdate("x-ended", RunStatus.COMPLETED, 6.0, "1"))])
    finally:
        store.close()

    hashes = client.run_source_hashes("hashed", status=ACTIVE_STATUSES, store=store_path)
    assert hashes == {"unknown": None, "older": "0ld", "same": hashed.source_hash}
    assert list(hashes) == ["unknown", "older", "same"]  # newest first
    assert client.run_source_hashes("hashed", store=store_path)["ended"] == "0ld"

    # A run whose start event is not written yet still started with the current code.
    monkeypatch.setenv("FLOVYN_NB_STORE", str(store_path))
    assert changed_runs(hashed) == ["unknown", "older"]
