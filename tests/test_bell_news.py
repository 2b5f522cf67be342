"""The DuckDB doorbell file carries what each commit did (``store/duckdb/bell.py``): a
line of JSON per commit that another process reads back, next to the one-byte rings of
older writers, through roll-overs and garbage."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flovyn_nb.store import Change, NewRun, open_store
from flovyn_nb.store.duckdb.bell import JOINED, QUIET, RING, parse
from flovyn_nb.store.news import News
from flovyn_nb.testing import wait_until

ROOT = Path(__file__).resolve().parent.parent

# Another process records a run (no engine), as ``flovyn-nb`` or a batch run would.
WRITER = textwrap.dedent(
    """
    import sys, time
    from flovyn_nb.store import Change, NewRun, RunUpdate, open_store
    from flovyn_nb.model import RunStatus
    store = open_store(sys.argv[1])
    run = NewRun("exec-1", "w-other", "k", "1", None, None, None, time.time(), "gpu")
    store.commit([Change(new_run=run)])
    store.commit([Change(run_update=RunUpdate("exec-1", RunStatus.CANCELLED, time.time()))])
    store.close()
    """
)


def run_row(workflow_id: str) -> NewRun:
    return NewRun(f"x-{workflow_id}", workflow_id, "k", "1", None, None, None, 0.0)


def born(execution_id: str, workflow_id: str, created_at: float = 0.0) -> News:
    """The record of a run a commit created (by :func:`run_row`, unless told otherwise)."""
    return News(
        execution_id, workflow_id, "RUNNING", kind="k", created_at=created_at, queue="default"
    )


def test_a_ring_from_another_process_names_the_run_and_its_status(tmp_path: Path) -> None:
    path = tmp_path / "news.duckdb"
    store = open_store(path)
    try:
        store.commit([Change(new_run=run_row("w-mine"))])
        watcher = store.doorbell.watcher()
        assert watcher.news() == []
        subprocess.run(
            [sys.executable, "-c", WRITER, str(path)],
            check=True,
            timeout=120,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        assert watcher.rung_by_others()
        said = watcher.news()
        assert said is not None and said[0].created_at is not None
        assert said == [
            News("exec-1", "w-other", "RUNNING", kind="k", created_at=said[0].created_at,
                 queue="gpu"),
            News("exec-1", status="CANCELLED"),
        ]  # fmt: skip
        store.commit([Change(new_run=run_row("w-mine-2"))])
        assert not watcher.rung_by_others()  # its own ring (a record too) is still its own
    finally:
        store.close()


def test_a_bell_emptied_at_its_roll_over_says_it_cannot_tell_then_tells_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "roll.duckdb"
    watching, writing = open_store(path), open_store(path)
    try:
        watcher = watching.doorbell.watcher()
        watcher.news()
        bell = Path(f"{path}.bell")
        with bell.open("ab") as file:  # as if many commits had rung: the next one empties it
            file.write(RING * (1 << 20))
        assert watcher.rung_by_others()
        assert watcher.news() is None  # a megabyte of bare rings
        writing.commit([Change(new_run=run_row("w-roll"))])
        assert bell.stat().st_size < 1000  # it was emptied
        assert watcher.rung_by_others()  # a shrink is a ring by someone else
        assert watcher.news() is None
        writing.commit([Change(new_run=run_row("w-roll-2"))])
        assert watcher.rung_by_others()
        assert watcher.news() == [born("x-w-roll-2", "w-roll-2")]
    finally:
        watching.close()
        writing.close()


@pytest.mark.parametrize(
    "garbage",
    [
        b"...",  # an older writer: a byte per commit
        b"[not json]\n",
        b'[{"x": 1}]\n',  # a newer or broken writer's record
        b'{"x": "a"}\n',
        b'[{"x": "a", "s"',  # cut short
        b"\x00\xff\n",
    ],
)
def test_a_garbled_or_old_bell_file_is_a_ring_that_cannot_tell(
    tmp_path: Path, garbage: bytes
) -> None:
    path = tmp_path / "garbled.duckdb"
    watching, writing = open_store(path), open_store(path)
    try:
        watcher = watching.doorbell.watcher()
        watcher.news()
        with Path(f"{path}.bell").open("ab") as file:
            file.write(garbage)
        assert watcher.rung_by_others()
        assert watcher.news() is None
        if not garbage.endswith(b"\n") and garbage.startswith(b"["):
            with Path(f"{path}.bell").open("ab") as file:
                file.write(b"\n")  # what follows a cut-short line starts on a line of its own
            watcher.rung_by_others()
            watcher.news()
        writing.commit([Change(new_run=run_row("w-after"))])
        wait_until(watcher.rung_by_others, timeout=30, message="the doorbell never rang")
        assert watcher.news() == [born("x-w-after", "w-after")]
    finally:
        watching.close()
        writing.close()


def test_an_engine_joining_is_told_apart_from_a_record_that_holds_its_letter() -> None:
    completed = b'[{"x":"a","s":"COMPLETED"}]\n'  # "E" is in COMPLETED
    assert parse(completed) == (False, [News("a", status="COMPLETED")])
    assert parse(completed + JOINED) == (True, None)
    assert parse(QUIET + completed + QUIET) == (False, [News("a", status="COMPLETED")])
    assert parse(RING + completed) == (False, None)


def test_the_task_queue_rows_ring_as_the_run_they_belong_to_moving() -> None:
    """Queueing, claiming, progressing and finishing a remote task is told as the owning
    run's history moving (or as nothing), not as "read the store": a worker busy with
    queued tasks must not make every live feed re-read the store on each of its commits."""
    from flovyn_nb.store.commit_news import news
    from flovyn_nb.store.rows import EventRow
    from flovyn_nb.store.taskqueue import ClaimTasks, FinishTask, QueueTask, TaskProgress

    queued = QueueTask("t1", "x1", "wf-1", "gpu-task", "gpu", "null", 1, None, None, 0.0)
    scheduled = EventRow("x1", 3, "TASK_SCHEDULED", "{}", 0.0)
    assert news([Change(events=[scheduled], intents=[queued])]) == [News("x1")]
    others = [
        ClaimTasks("e1", ["gpu-task"], ["gpu"], lambda engine: True, 4, 0.0),
        TaskProgress("t1", "e1", 1, None, 0.0),
        FinishTask("t1", "e1", "COMPLETED", 1, "5", None, False, 0.0),
    ]
    assert news([Change(intents=others)]) == []


# Another process creates a run as ``flovyn-nb start`` would: the ring carries its row.
CREATOR = textwrap.dedent(
    """
    import sys
    from flovyn_nb.store import Change, NewRun, open_store
    store = open_store(sys.argv[1])
    run = NewRun("exec-born", "w-born", "nightly-report", "1", None, None, "exec-parent",
                 1764000000.125, "gpu")
    store.commit([Change(new_run=run)])
    store.close()
    """
)


def test_a_created_run_s_ring_from_another_process_carries_its_kind_and_creation_time(
    store_target: Path | str,
) -> None:
    """On both backends: the live feed can show the new row without reading the store,
    and its creation time is the one the store keeps (what ``GET runs`` says)."""
    store = open_store(store_target)
    try:
        watcher = store.doorbell.watcher()
        assert watcher.news() == []
        subprocess.run(
            [sys.executable, "-c", CREATOR, str(store_target)],
            check=True,
            timeout=120,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        )
        wait_until(watcher.rung_by_others, timeout=30, message="the doorbell never rang")
        assert watcher.news() == [
            News("exec-born", "w-born", "RUNNING", kind="nightly-report",
                 created_at=1764000000.125, queue="gpu"),
        ]  # fmt: skip
        stored = store.get_run("w-born", with_events=False)
        assert stored is not None and stored.created_at.timestamp() == 1764000000.125
    finally:
        store.close()


def test_created_runs_details_are_dropped_before_a_record_grows_too_long() -> None:
    from flovyn_nb.store.news import MAX_ENCODED, decode, encode

    many = [born(f"x-{i:04}", f"w-{i:04}", 1764000000.0 + i) for i in range(60)]
    text = encode(many)
    assert text is not None and len(text) <= MAX_ENCODED
    assert decode(text) == [News(n.execution_id, n.workflow_id, "RUNNING") for n in many]
    few = many[:3]
    assert decode(encode(few) or "") == few
    # A creation time that is not epoch seconds is a record it does not understand.
    for bad in ('"soon"', "true", "NaN", "1e300", "-1"):
        assert decode(f'[{{"x":"a","w":"b","s":"RUNNING","k":"k","t":{bad}}}]') is None
