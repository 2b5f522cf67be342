"""Unattended runs of a notebook through papermill (``flovyn-nb run``).

The notebook runs in a normal kernel with the extension in batch mode. The kernel writes a
summary of the runs it touched (started or resumed) to the file named by
``FLOVYN_NB_SUMMARY`` when it calls ``fn.wait_all()`` and when it shuts down; the exit
code comes from that summary:

- 0: every run completed;
- 3: some runs are suspended, waiting on promises or signals (their resolve commands are
  printed; the next run of the same notebook resumes them);
- 1: a run failed, or a cell raised, or the kernel died.

Everything that can be checked before the kernel starts is checked first, so a bad
argument is one :class:`InvalidInput` line and leaves nothing behind (no output notebook,
no store): the notebook must read as a valid notebook, its kernel must be installed, the
store path must not be a folder.
"""

from __future__ import annotations

import importlib.util
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flovyn_nb.errors import FlovynError, InvalidInput, StoreError

EXIT_COMPLETED = 0
EXIT_FAILED = 1
EXIT_SUSPENDED = 3

SUMMARY_ENV = "FLOVYN_NB_SUMMARY"


@dataclass
class RunSummary:
    """One run a batch notebook touched, as the kernel reports it to the runner."""

    workflow_id: str
    kind: str
    status: str
    error: str | None = None
    pending_promises: list[str] = field(default_factory=list)


@dataclass
class BatchResult:
    """What ``flovyn-nb run`` did: the executed notebook, its runs and the exit code."""

    notebook: Path
    output: Path
    store: str  # the store's location (a URL without its password)
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


def _encrypted_kernel_manager() -> type[Any]:
    """A kernel manager that gives the kernel CurveZMQ keys when its kernelspec supports
    them: the batch kernel's traffic is then encrypted, and ipykernel no longer warns
    "running over TCP without encryption" on every ``flovyn-nb run``."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class EncryptedKernelManager(AsyncKernelManager):
        @default("transport_encryption")
        def _auto(self) -> str:
            import zmq

            # "auto" provisions keys only for kernels that declare curve support;
            # without libsodium pyzmq refuses it, and the kernel runs as before.
            return "auto" if zmq.has("curve") else "disabled"

    return EncryptedKernelManager


def _first_line(exc: BaseException) -> str:
    return next(
        (line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__
    )


_FIX = "check the file (open it in Jupyter, or restore it) and run again"


def _read_json(source: Path) -> tuple[str, dict[str, Any]]:
    """The file's text and top-level JSON object, if it can be a notebook at all.

    These checks need no nbformat, whose import takes seconds (its JSON-schema formats).
    """
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the notebook {source}: {exc.strerror or exc}") from None
    if not data.strip():
        raise InvalidInput(f"{source} is empty ({len(data)} bytes), not a notebook; {_FIX}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(f"{source} is not a notebook: it is not UTF-8 text; {_FIX}") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"{source} is not a notebook: invalid JSON at line {exc.lineno} column "
            f"{exc.colno} ({exc.msg}), truncated or damaged; {_FIX}"
        ) from None
    if not isinstance(raw, dict) or "nbformat" not in raw:
        raise InvalidInput(
            f"{source} is JSON but not a Jupyter notebook (no top-level 'nbformat' field); {_FIX}"
        )
    version = raw["nbformat"]
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= 4:
        raise InvalidInput(
            f"{source} is not a notebook this Jupyter can run: nbformat {version!r} "
            "(it reads versions 1 to 4); save it from a current Jupyter and run again"
        )
    return text, raw


def _validate(source: Path, text: str) -> None:
    import nbformat

    try:
        notebook = nbformat.reads(text, as_version=4)  # type: ignore[no-untyped-call]
        nbformat.validate(notebook)
    except (nbformat.ValidationError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # nbformat reports a malformed notebook with any of these, depending on where.
        raise InvalidInput(
            f"{source} is not a valid notebook: {_first_line(exc)}; {_FIX}"
        ) from None


def check_kernel(spec: object, source: Path, kernel_name: str | None) -> str:
    """The name of the kernel papermill will start (``--kernel``, else the notebook's
    ``metadata.kernelspec``), which must be installed.

    Raises:
        InvalidInput: no kernel is named, or the named one is not installed.
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    specs = KernelSpecManager()
    installed = ", ".join(sorted(specs.find_kernel_specs())) or "none"
    name = kernel_name or (spec.get("name") if isinstance(spec, dict) else None)
    if not name or not isinstance(name, str):
        raise InvalidInput(
            f"{source} names no kernel (no metadata.kernelspec.name); pass --kernel NAME "
            f"(installed: {installed})"
        )
    try:
        specs.get_kernel_spec(name)
    except NoSuchKernel:
        where = "--kernel names" if kernel_name else f"{source} asks for"
        raise InvalidInput(
            f"{where} the Jupyter kernel {name!r}, which is not installed (installed: "
            f"{installed}); pass --kernel with one of those, or install it "
            "(jupyter kernelspec list)"
        ) from None
    return name


def check_notebook(source: Path, kernel_name: str | None = None) -> None:
    """Refuse, before papermill writes anything, a notebook it could not run.

    Raises:
        InvalidInput: the file is unreadable, empty, not UTF-8, not JSON, JSON that is not
            a valid Jupyter notebook, or its kernel is not installed.
    """
    text, raw = _read_json(source)
    metadata = raw.get("metadata")
    spec = metadata.get("kernelspec") if isinstance(metadata, dict) else None
    check_kernel(spec, source, kernel_name)  # first: it is quick, the validation is not
    _validate(source, text)


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
        InvalidInput: the notebook does not exist or is not a valid notebook, its kernel is
            not installed, or the output path is unusable; nothing was created.
        StoreError: the store path is a folder.
        FlovynError: papermill is missing.
    """
    source = Path(notebook)
    if not source.exists():
        raise InvalidInput(
            f"the notebook {source} does not exist (looked in {source.resolve().parent}); "
            "check the name and the folder"
        )
    if not source.is_file() or source.suffix != ".ipynb":
        raise InvalidInput(f"{source} is not a notebook file (.ipynb)")
    from flovyn_nb import client

    target_store = client.store_target(store)  # a URL keeps its password for the kernel
    # A server store has no folder: outputs then go to ./.flovyn/outputs.
    is_url = "://" in target_store
    store_path = Path(".flovyn", "server") if is_url else Path(target_store)
    if not is_url and store_path.is_dir():
        raise StoreError(
            f"the store path {store_path} is a folder; name a file", path=str(store_path)
        )
    # Found, not imported: importing papermill takes seconds, a refusal should not.
    if importlib.util.find_spec("papermill") is None:
        raise FlovynError("flovyn-nb run needs papermill: pip install papermill")
    check_notebook(source, kernel_name)
    target = Path(output) if output is not None else default_output(source, store_path)
    if target.is_dir():
        raise InvalidInput(f"the output path {target} is a folder; name a .ipynb file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"cannot create the folder for the output notebook {target}: "
            f"{exc.strerror or exc}; pass --output somewhere writable"
        ) from None
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="flovyn-batch-") as folder:
        summary = Path(folder) / "summary.json"
        overrides = {
            "FLOVYN_NB_STORE": target_store,
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
                kernel_manager_class=_encrypted_kernel_manager(),
            )
        except PapermillExecutionError as exc:
            cell_error = f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
        except DeadKernelError:
            cell_error = (
                "the kernel died (a cell ended the process, or it ran out of memory); "
                f"{target} shows how far it got"
            )
        except CellTimeoutError:
            cell_error = f"a cell ran longer than {execution_timeout} s; {target} shows which"
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
        store=client.store_location(target_store),
        exit_code=code,
        runs=runs,
        cell_error=cell_error,
        seconds=time.monotonic() - started,
    )
