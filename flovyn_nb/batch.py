"""Unattended runs of a notebook through papermill (``flovyn-nb run``).

The notebook runs in a normal kernel with the extension in batch mode. The kernel writes a
summary of the runs it touched (started or resumed) to the file named by
``FLOVYN_NB_SUMMARY`` when it calls ``fn.wait_all()`` and when it shuts down; the exit
code comes from that summary:

- 0: every run completed;
- 3: some runs are suspended, waiting on promises or signals (their resolve commands are
  printed; the next run of the same notebook resumes them);
- 1: a run failed, or a cell raised.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flovyn_nb.errors import FlovynError, InvalidInput
from flovyn_nb.store import canonical_path, default_store_path

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_SUSPENDED = 3

SUMMARY_ENV = "FLOVYN_NB_SUMMARY"


@dataclass
class RunSummary:
    workflow_id: str
    kind: str
    status: str
    error: str | None = None
    pending_promises: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    notebook: Path
    output: Path
    store: Path
    exit_code: int
    runs: list[RunSummary]
    cell_error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> list[RunSummary]:
        return [r for r in self.runs if r.status == "FAILED"]

    @property
    def suspended(self) -> list[RunSummary]:
        return [r for r in self.runs if r.status in ("RUNNING", "WAITING", "PENDING")]


def default_output(notebook: Path, store: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return store.parent / "outputs" / f"{notebook.stem}-{stamp}.ipynb"


def read_summary(path: Path) -> list[RunSummary]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    data = json.loads(path.read_text())
    return [RunSummary(**item) for item in data.get("runs", [])]


def write_summary(path: Path, runs: list[RunSummary]) -> None:
    """Written by the kernel; atomically, so a reader never sees half a file."""
    payload = {"runs": [r.__dict__ for r in runs]}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1))
    os.replace(tmp, path)


def run_notebook(
    notebook: str | os.PathLike[str],
    *,
    parameters: dict[str, Any] | None = None,
    output: str | os.PathLike[str] | None = None,
    store: str | os.PathLike[str] | None = None,
    kernel_name: str | None = None,
    progress: bool = True,
    execution_timeout: float | None = None,
) -> BatchResult:
    """Execute a notebook with papermill in batch mode and summarise its runs.

    Raises:
        InvalidInput: the notebook does not exist or is not a notebook.
        FlovynError: papermill is missing.
    """
    source = Path(notebook)
    if not source.is_file() or source.suffix != ".ipynb":
        raise InvalidInput(f"{source} is not a notebook file (.ipynb)")
    try:
        import papermill
        from papermill.exceptions import PapermillExecutionError
    except ImportError:
        raise FlovynError("flovyn-nb run needs papermill: pip install papermill") from None

    store_path = canonical_path(store if store is not None else default_store_path())
    target = Path(output) if output is not None else default_output(source, store_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flovyn-batch-") as folder:
        summary = Path(folder) / "summary.json"
        overrides = {
            "FLOVYN_NB_STORE": str(store_path),
            "FLOVYN_NB_MODE": "batch",
            SUMMARY_ENV: str(summary),
        }
        saved = {key: os.environ.get(key) for key in overrides}
        os.environ.update(overrides)  # the kernel inherits this process's environment
        cell_error = None
        try:
            papermill.execute_notebook(
                str(source),
                str(target),
                parameters=parameters or {},
                kernel_name=kernel_name,
                progress_bar=progress,
                cwd=str(source.parent),
                execution_timeout=execution_timeout,
            )
        except PapermillExecutionError as exc:
            cell_error = f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        runs = read_summary(summary)
    if cell_error is not None or any(r.status == "FAILED" for r in runs):
        code = EXIT_FAILED
    elif any(r.status in ("RUNNING", "WAITING", "PENDING") for r in runs):
        code = EXIT_SUSPENDED
    else:
        code = EXIT_COMPLETED
    return BatchResult(
        notebook=source,
        output=target,
        store=store_path,
        exit_code=code,
        runs=runs,
        cell_error=cell_error,
        seconds=time.monotonic() - started,
    )
