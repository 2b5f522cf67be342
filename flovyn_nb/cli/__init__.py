"""``flovyn-nb``: look at runs and answer them from a terminal.

Every command takes ``--store PATH`` (default: ``FLOVYN_NB_STORE``, then
``./.flovyn/flovyn.duckdb``), shares the store politely with kernels, and starts no engine
(but ``worker``). Errors: one line on stderr, exit 1 (request or store) or 2 (bad usage,
folded into one line). ``--json`` is stable (``docs/cli.md``). Command lines printed
to paste are built by :func:`command_line` (each word quoted for a POSIX shell).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def _store_option(fn: F) -> F:
    return click.option(
        "--store",
        "store",
        # No dir_okay=False: a folder gets the store's own one-line error (exit 1), the
        # same as FLOVYN_NB_STORE naming a folder, not click's usage text.
        type=click.Path(path_type=Path),
        default=None,
        help="Store file (default: $FLOVYN_NB_STORE or ./.flovyn/flovyn.duckdb).",
    )(fn)


def _store_path(store: Path | None) -> Path:
    from flovyn_nb import client

    return Path(client.store_location(store))


def command_line(
    command: str, arguments: Sequence[str], options: Sequence[tuple[str, str]] = ()
) -> str:
    """A ``flovyn-nb`` command line that a POSIX shell reads back word for word.

    Each word is quoted with :func:`shlex.join`, so a workflow id such as ``$(touch x)``
    or ``it's`` is pasted as data, never run or mis-split; when an argument starts with
    ``-`` the options come first and ``--`` ends them, so the id is not read as an option.
    """
    words = ["flovyn-nb", command]
    flat = [word for pair in options for word in pair]
    if any(argument.startswith("-") for argument in arguments):
        words += [*flat, "--", *arguments]
    else:
        words += [*arguments, *flat]
    return shlex.join(words)


class _OneLineUsage(click.ClickException):
    """A usage error as one line (click prints usage, a hint and the error on three)."""

    exit_code = 2

    def __init__(self, error: click.UsageError) -> None:
        super().__init__(error.format_message())
        self.command = error.ctx.command_path if error.ctx is not None else "flovyn-nb"

    def show(self, file: Any = None) -> None:
        click.echo(
            f"Error: {self.message} (see '{self.command} --help')",
            file=file if file is not None else sys.stderr,
        )


class _Group(click.Group):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise  # `flovyn-nb` alone: the whole help is what is wanted
        except click.UsageError as exc:
            raise _OneLineUsage(exc) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _OneLineUsage(exc) from None


class _Errors:
    """Turn flovyn errors into one clear line and exit code 1."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        from flovyn_nb.errors import FlovynError

        if exc is not None and isinstance(exc, FlovynError):
            raise click.ClickException(str(exc)) from None


class _NotJson(ValueError):
    """NaN / Infinity: Python's json reads them, but they are not JSON (nor storable)."""


def _no_constant(name: str) -> Any:
    raise _NotJson(name)


def _json_value(text: str, what: str) -> Any:
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise click.ClickException(
            f"{what} is not valid JSON ({exc.msg} at position {exc.pos}): {text!r}; "
            "quote strings, e.g. --value '\"yes\"' or --value '{\"approved\": true}'"
        ) from None
    except _NotJson as exc:
        raise click.ClickException(
            f"{what} is not valid JSON: {exc} is not a JSON number; give a number, null, "
            f"or the string '\"{exc}\"'"
        ) from None


def _dump(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False, width=max(100, _terminal_width()))


def _terminal_width() -> int:
    try:
        return os.get_terminal_size().columns
    except OSError:
        return 120


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, width: int = 60) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= width else text[: width - 1] + "…"


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="flovyn_nb")
def main() -> None:
    """Durable notebook workflows: list runs, answer promises, query history."""


# -- reading ------------------------------------------------------------------------------


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "workflow_id": run.workflow_id,
        "execution_id": run.execution_id,
        "kind": run.kind,
        "status": run.status.value,
        "parent_id": run.parent_id,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "input": run.input,
        "output": run.output,
        "error": None if run.error is None else run.error.model_dump(),
    }


def _promise_json(promise: Any, store: Path) -> dict[str, Any]:
    return {
        "workflow_id": promise.workflow_id,
        "name": promise.name,
        "status": promise.status.value,
        "created_at": promise.created_at.isoformat(),
        "timeout_at": None if promise.timeout_at is None else promise.timeout_at.isoformat(),
        "schema": promise.schema,
        "resolve_command": _resolve_hint(promise, store),
    }


def _resolve_hint(promise: Any, store: Path) -> str:
    # --store always: the pasted command answers this store whatever the shell's folder.
    return command_line(
        "resolve",
        [promise.workflow_id, promise.name],
        [("--value", "<JSON>"), ("--store", str(store))],
    )


def _text(value: str) -> Any:
    """User data for a rich table or line: printed as is, never read as [markup]."""
    from rich.text import Text

    return Text(value)


@main.command()
@click.option(
    "--status", "statuses", multiple=True, help="Only runs with this status (repeatable)."
)
@click.option("--kind", default=None, help="Only runs of this workflow.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="At most this many runs (newest first); 1 or more.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_store_option
def runs(
    statuses: tuple[str, ...],
    kind: str | None,
    limit: int | None,
    as_json: bool,
    store: Path | None,
) -> None:
    """List runs, newest first."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors():
        found = client.list_runs(status=list(statuses) or None, kind=kind, limit=limit, store=path)
    if as_json:
        _dump([_run_json(r) for r in found])
        return
    from rich.table import Table

    table = Table(title=_text(f"{len(found)} run(s) in {path}"), title_justify="left")
    for column in ("workflow id", "kind", "status", "created", "updated"):
        table.add_column(column)
    for r in found:
        table.add_row(
            _text(r.workflow_id),
            _text(r.kind),
            r.status.value,
            _when(r.created_at),
            _when(r.updated_at),
        )
    _console().print(table)


@main.command()
@click.argument("workflow_id")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_store_option
def show(workflow_id: str, as_json: bool, store: Path | None) -> None:
    """Show a run: status, input and output, its event timeline, pending promises."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors():
        run = client.get_run(workflow_id, store=path)
        promises = client.pending_promises(run.workflow_id, store=path)
    if as_json:
        data = _run_json(run)
        data["events"] = [
            {"seq": e.seq, "type": e.type.value, "ts": e.ts.isoformat(), "payload": e.payload}
            for e in run.events
        ]
        data["pending_promises"] = [_promise_json(p, path) for p in promises]
        _dump({**data, **_worker.queue_json(run, str(path))})
        return
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    console.print(
        f"[bold]{escape(run.workflow_id)}[/bold]  {escape(run.kind)}  "
        f"[bold]{run.status.value}[/bold]"
    )
    console.print(
        f"execution {run.execution_id}, created {_when(run.created_at)}, updated {_when(run.updated_at)}"
    )
    console.print(_text(f"input:  {_short(run.input, 200)}"))
    console.print(_text(_worker.queue_line(run, str(path))))
    if run.output is not None:
        console.print(_text(f"output: {_short(run.output, 200)}"))
    if run.error is not None:
        console.print(_text(f"error:  {run.error.type}: {run.error.message}"))
    table = Table(title="timeline", title_justify="left")
    for column in ("seq", "+ms", "event", "details"):
        table.add_column(column)
    start = run.events[0].ts if run.events else run.created_at
    for e in run.events:
        offset = (e.ts - start).total_seconds() * 1000
        table.add_row(str(e.seq), f"{offset:.1f}", e.type.value, _text(_event_summary(e.payload)))
    console.print(table)
    for p in promises:
        due = f", times out {_when(p.timeout_at)} UTC" if p.timeout_at else ""
        # Plain echo: rich would wrap a long command line, and a pasted command must be whole.
        click.echo(f"waiting for promise {p.name!r}{due}:")
        click.echo(f"  {_resolve_hint(p, path)}")


def _event_summary(payload: dict[str, Any]) -> str:
    for key in ("taskKind", "promiseName", "signalName", "operationName", "timerId", "kind", "key"):
        if key in payload:
            extra = ""
            if "attempt" in payload:
                extra = f" attempt {payload['attempt']}"
            return f"{payload[key]}{extra}"
    if "error" in payload and isinstance(payload["error"], dict):
        return _short(f"{payload['error'].get('type')}: {payload['error'].get('message')}")
    if "output" in payload:
        return _short(payload["output"])
    if "attempt" in payload:
        return f"attempt {payload['attempt']}"
    return ""


@main.command()
@click.argument("workflow_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@_store_option
def logs(workflow_id: str, follow: bool, store: Path | None) -> None:
    """Print a run's step logs."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors():
        run = client.get_run(workflow_id, events=False, store=path)
        seen = 0
        rung = threading.Event()
        # Another process writes the run: its commits ring the store's doorbell.
        feed = client.watch(lambda change: rung.set(), store=path) if follow else None
        while True:
            rung.clear()
            entries = client.run_logs(run.execution_id, store=path)
            for entry in entries[seen:]:
                step = (
                    "workflow" if entry.task_execution_id is None else entry.task_execution_id[:8]
                )
                line = f"{_when(entry.ts)} {step:>8} {entry.stream:<8} {entry.message}"
                click.echo(line, err=entry.stream == "stderr")
            seen = len(entries)
            if not follow:
                return
            status = client.get_run(workflow_id, events=False, store=path).status
            if status.is_terminal:
                assert feed is not None
                feed.close()
                return
            rung.wait()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_store_option
def promises(as_json: bool, store: Path | None) -> None:
    """List promises waiting for an answer, across all runs."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors():
        found = client.pending_promises(store=path)
    if as_json:
        _dump([_promise_json(p, path) for p in found])
        return
    from rich.table import Table

    table = Table(title=f"{len(found)} pending promise(s)", title_justify="left")
    for column in ("workflow id", "promise", "created", "times out", "expects"):
        table.add_column(column)
    for p in found:
        expects = (p.schema or {}).get("title", "JSON") if isinstance(p.schema, dict) else "JSON"
        table.add_row(
            _text(p.workflow_id),
            _text(p.name),
            _when(p.created_at),
            _when(p.timeout_at),
            _text(str(expects)),
        )
    _console().print(table)


# -- answering ----------------------------------------------------------------------------


@main.command()
@click.argument("workflow_id")
@click.argument("name")
@click.option(
    "--value", "value", required=True, help="The value, as JSON (e.g. '{\"approved\": true}')."
)
@click.option("--early", is_flag=True, help="Accept a promise the run has not reached yet.")
@_store_option
def resolve(workflow_id: str, name: str, value: str, early: bool, store: Path | None) -> None:
    """Resolve promise NAME of run WORKFLOW_ID with a JSON value."""
    from flovyn_nb import client

    data = _json_value(value, "--value")
    with _Errors():
        client.resolve_promise(
            workflow_id, name, data, store=_store_path(store), resolved_by=_who(), allow_early=early
        )
    click.echo(f"resolved {workflow_id}/{name}")


@main.command()
@click.argument("workflow_id")
@click.argument("name")
@click.option("--reason", required=True, help="Why (the workflow sees it in PromiseRejected).")
@_store_option
def reject(workflow_id: str, name: str, reason: str, store: Path | None) -> None:
    """Reject promise NAME of run WORKFLOW_ID."""
    from flovyn_nb import client

    with _Errors():
        client.reject_promise(
            workflow_id,
            name,
            reason,
            store=_store_path(store),
            resolved_by=_who(),
            allow_early=False,
        )
    click.echo(f"rejected {workflow_id}/{name}")


@main.command()
@click.argument("workflow_id")
@click.argument("name")
@click.option("--value", "value", default="null", help="The signal's value, as JSON.")
@_store_option
def signal(workflow_id: str, name: str, value: str, store: Path | None) -> None:
    """Send signal NAME to run WORKFLOW_ID."""
    from flovyn_nb import client

    data = _json_value(value, "--value")
    with _Errors():
        client.signal_workflow(workflow_id, name, data, store=_store_path(store))
    click.echo(f"signalled {workflow_id}/{name}")


@main.command()
@click.argument("workflow_id")
@_store_option
def cancel(workflow_id: str, store: Path | None) -> None:
    """Ask run WORKFLOW_ID to stop (its engine cancels it)."""
    from flovyn_nb import client

    with _Errors():
        client.cancel_workflow(workflow_id, store=_store_path(store))
    click.echo(f"cancellation requested for {workflow_id}")


@main.command()
@click.argument("query")
@click.option("--csv", "as_csv", is_flag=True, help="Write CSV instead of a table.")
@click.option(
    "--write",
    is_flag=True,
    help="Allow statements that change the store (maintenance; one committed transaction).",
)
@_store_option
def sql(query: str, as_csv: bool, write: bool, store: Path | None) -> None:
    """Run a read-only SQL query (one SELECT) over the store's tables."""
    from flovyn_nb import client

    with _Errors():
        frame = client.sql(query, store=_store_path(store), write=write)
    if as_csv:
        click.echo(frame.to_csv(index=False), nl=False)
        return
    from rich.table import Table

    table = Table(title=f"{len(frame)} row(s)", title_justify="left")
    for column in frame.columns:
        table.add_column(_text(str(column)))
    for row in frame.itertuples(index=False):
        table.add_row(*(_text(_short(v, 80)) for v in row))
    _console().print(table)


# -- batch ---------------------------------------------------------------------------------


def _parameters(pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    for key, _ in pairs:
        # papermill assigns each parameter to a Python variable in an injected cell.
        if not key.isidentifier():
            raise click.BadParameter(
                f"{key!r} is not a Python variable name (letters, digits, _)",
                param_hint="'-p KEY VALUE'",
            )
    return {key: _parameter(value) for key, value in pairs}


def _parameter(text: str) -> Any:
    """papermill-style typing of `-p KEY VALUE`: numbers, true/false, null, JSON, or text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return text


@main.command(name="run")
@click.argument("notebook", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="A notebook parameter (repeatable), as with papermill.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to keep the executed notebook (default .flovyn/outputs/NAME-TIME.ipynb).",
)
@click.option("--kernel", "kernel_name", default=None, help="Kernel to run it with.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@_store_option
def run_command(
    notebook: Path,
    parameters: tuple[tuple[str, str], ...],
    output: Path | None,
    kernel_name: str | None,
    no_progress: bool,
    store: Path | None,
) -> None:
    """Run NOTEBOOK unattended with papermill; resume its suspended runs.

    Exits 0 when all its runs completed, 3 when some wait on promises (it prints how to
    answer them), 1 when a run failed or a cell raised.
    """
    from flovyn_nb import batch, client

    path = _store_path(store)
    with _Errors():
        result = batch.run_notebook(
            notebook,
            parameters=_parameters(parameters),
            output=output,
            store=path,
            kernel_name=kernel_name,
            progress=not no_progress,
        )
    click.echo(f"output notebook: {result.output}")
    for summary in result.runs:
        click.echo(f"  {summary.workflow_id:<32} {summary.kind:<24} {summary.status}")
    if result.cell_error:
        click.echo(f"a cell failed: {result.cell_error}", err=True)
    for failed in result.failed:
        click.echo(f"run {failed.workflow_id} failed: {failed.error}", err=True)
    if result.exit_code == batch.EXIT_SUSPENDED:
        click.echo("suspended runs wait for:")
        for summary in result.suspended:
            with _Errors():
                waiting = client.pending_promises(summary.workflow_id, store=path)
            for promise in waiting:
                click.echo(f"  {_resolve_hint(promise, path)}")
            if not waiting:
                show = command_line("show", [summary.workflow_id], [("--store", str(path))])
                click.echo(f"  {summary.workflow_id}: a signal or timer ({show})")
        click.echo("then run the notebook again to finish them.")
    sys.exit(result.exit_code)


def _who() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


# Commands of other topics live in modules of this package, registered on ``main`` here.
from flovyn_nb.cli import worker as _worker

_worker.register(main, _Errors)
