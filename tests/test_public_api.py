"""The public surface is small and pinned; importing it is fast and lazy."""

from __future__ import annotations

import json
import subprocess
import sys

import flovyn_nb
import flovyn_nb.errors
import flovyn_nb.testing

EXPECTED = [
    "ChildWorkflowFailed",
    "DeterminismViolation",
    "FlovynError",
    "InvalidInput",
    "PromiseAlreadyResolved",
    "PromiseInfo",
    "PromiseRejected",
    "PromiseTimeout",
    "RetryPolicy",
    "RunInfo",
    "RunStatus",
    # What fn.start() returns since issue 13 (point 5): a small public object (store
    # location, running, errors, stop(), context manager) instead of the engine itself.
    "Runtime",
    "SignalTimeout",
    "StoreError",
    "StoreLocked",
    "SyncWorkflowContext",
    # Issue 14: Flovyn's TaskCancelled, exported beside TaskFailed.
    "TaskCancelled",
    "TaskContext",
    "TaskFailed",
    "TaskTimeout",
    "UnknownWorkflow",
    "WorkflowCancelled",
    "WorkflowContext",
    "WorkflowFailed",
    "WorkflowHandle",
    "cancel_workflow",
    "current_engine",
    "dashboard",
    "get_handle",
    "get_run",
    "list_runs",
    "pending_promises",
    "queue",
    "reject_promise",
    "resolve_promise",
    "run_logs",
    # Issue 14: Flovyn's signal-with-start.
    "schedule",
    "signal_with_start_workflow",
    "signal_workflow",
    "sql",
    "start",
    "start_workflow",
    "stop",
    "task",
    "wait_all",
    "workflow",
]


def test_all_is_sorted_and_pinned() -> None:
    assert flovyn_nb.__all__ == sorted(flovyn_nb.__all__)
    assert flovyn_nb.__all__ == EXPECTED
    for name in flovyn_nb.__all__:
        assert getattr(flovyn_nb, name) is not None


def test_errors_share_one_root() -> None:
    for name in flovyn_nb.errors.__all__:
        cls = getattr(flovyn_nb.errors, name)
        assert issubclass(cls, flovyn_nb.errors.FlovynError), name
    assert set(flovyn_nb.testing.__all__) >= {"FakeClock", "temporary_engine", "temporary_store"}


def test_import_is_lazy() -> None:
    """Importing the package and defining with it loads none of the heavy modules (what
    keeps the import fast). The import time itself (< 0.3 s) is a figure of ``make bench``
    (import_time, import_ms), not asserted here."""
    code = (
        "import sys, json; import flovyn_nb; "
        "from flovyn_nb import workflow, task, RetryPolicy; "
        "heavy = [m for m in ('duckdb', 'pandas', 'anyio', 'pydantic', 'IPython') if m in sys.modules]; "
        "print(json.dumps({'heavy': heavy}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout) == {"heavy": []}
