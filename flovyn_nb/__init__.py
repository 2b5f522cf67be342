"""flovyn_nb: durable workflows that live in Jupyter notebooks.

```python
import flovyn_nb as fn

@fn.task(retry_policy=fn.RetryPolicy(max_attempts=3))
def fetch(url: str) -> dict: ...

@fn.workflow(name="report")
async def report(ctx: fn.WorkflowContext, url: str) -> int:
    rows = await ctx.schedule(fetch, url)
    ok = await ctx.promise("approve", timeout=3600)
    return len(rows)

fn.start(store="flovyn.duckdb")
h = fn.start_workflow(report, "https://example.org/data.json", workflow_id="report-1")
fn.resolve_promise("report-1", "approve", True)
h.result()
```

The heavy parts (duckdb, anyio, pydantic, IPython) load on first use, so importing the
package is fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from flovyn_nb import errors as _errors  # light: no third-party imports

__version__ = "0.1.0"

__all__ = [
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
    "Runtime",
    "SignalTimeout",
    "StoreError",
    "StoreLocked",
    "SyncWorkflowContext",
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

_LAZY = {
    "RetryPolicy": "flovyn_nb.definitions",
    "task": "flovyn_nb.definitions",
    "workflow": "flovyn_nb.definitions",
    "WorkflowContext": "flovyn_nb.context",
    "SyncWorkflowContext": "flovyn_nb.context",
    "TaskContext": "flovyn_nb.context",
    "PromiseInfo": "flovyn_nb.model",
    "RunInfo": "flovyn_nb.model",
    "RunStatus": "flovyn_nb.model",
    "Runtime": "flovyn_nb.runtime",
    "WorkflowHandle": "flovyn_nb.client",
    "cancel_workflow": "flovyn_nb.client",
    "current_engine": "flovyn_nb.client",
    "dashboard": "flovyn_nb.widgets",
    "get_handle": "flovyn_nb.client",
    "get_run": "flovyn_nb.client",
    "list_runs": "flovyn_nb.client",
    "pending_promises": "flovyn_nb.client",
    "queue": "flovyn_nb.client",
    "reject_promise": "flovyn_nb.client",
    "resolve_promise": "flovyn_nb.client",
    "run_logs": "flovyn_nb.client",
    "schedule": "flovyn_nb.client",
    "signal_with_start_workflow": "flovyn_nb.client",
    "signal_workflow": "flovyn_nb.client",
    "sql": "flovyn_nb.client",
    "start": "flovyn_nb.client",
    "start_workflow": "flovyn_nb.client",
    "stop": "flovyn_nb.client",
    "wait_all": "flovyn_nb.kernel.waiting",
}
_LAZY.update(dict.fromkeys(_errors.__all__, "flovyn_nb.errors"))

if TYPE_CHECKING:
    from flovyn_nb.client import (
        WorkflowHandle,
        cancel_workflow,
        current_engine,
        get_handle,
        get_run,
        list_runs,
        pending_promises,
        queue,
        reject_promise,
        resolve_promise,
        run_logs,
        schedule,
        signal_with_start_workflow,
        signal_workflow,
        sql,
        start,
        start_workflow,
        stop,
    )
    from flovyn_nb.context import SyncWorkflowContext, TaskContext, WorkflowContext
    from flovyn_nb.definitions import RetryPolicy, task, workflow
    from flovyn_nb.errors import (
        ChildWorkflowFailed,
        DeterminismViolation,
        FlovynError,
        InvalidInput,
        PromiseAlreadyResolved,
        PromiseRejected,
        PromiseTimeout,
        SignalTimeout,
        StoreError,
        StoreLocked,
        TaskCancelled,
        TaskFailed,
        TaskTimeout,
        UnknownWorkflow,
        WorkflowCancelled,
        WorkflowFailed,
    )
    from flovyn_nb.kernel.waiting import wait_all
    from flovyn_nb.model import PromiseInfo, RunInfo, RunStatus
    from flovyn_nb.runtime import Runtime
    from flovyn_nb.widgets import dashboard


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext flovyn_nb``: start the engine, register ``%flovyn``, show live panels."""
    from flovyn_nb.kernel.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext flovyn_nb`` / ``%reload_ext``: stop the engine cleanly."""
    from flovyn_nb.kernel.extension import unload

    unload(ipython)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """The Jupyter server extension (REST API and live feed under ``/flovyn-nb/api/``)."""
    from flovyn_nb.server.app.extension import FlovynNb

    return [{"module": "flovyn_nb.server.app.extension", "app": FlovynNb}]


def __getattr__(name: str) -> Any:
    if name == "testing":  # fn.testing.wait_until without a separate import
        return importlib.import_module("flovyn_nb.testing")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'flovyn_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if module == "flovyn_nb.client":
        # The client imports no display code: the widgets register how a handle shows.
        from flovyn_nb.widgets import register_display

        register_display()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
