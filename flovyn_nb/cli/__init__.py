"""``flovyn-nb``: look at runs and answer them from a terminal.

Every command takes ``--store PATH_OR_URL`` (default: ``FLOVYN_NB_STORE``, then the store found
as kernels find it: the nearest ``.flovyn/`` up to the project's top, else the project's
top, see ``store.discover_store``), works while a kernel holds the store (the store is shared
politely), and starts no engine (but ``worker``). Errors are one line on stderr and a non-zero exit:
1 for a problem with the request or the store, 2 for bad usage (click's usage errors are
folded into one line too). ``--json`` output is stable; its fields are documented in
``docs/cli.md``. Every command line printed for the user to paste is built by
:func:`command_line`, which quotes each word for a POSIX shell.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import Any

import click

from flovyn_nb.cli import details
from flovyn_nb.cli.common import (
    _console,
    _dump,
    _Errors,
    _Group,
    _json_value,
    _short,
    _shown,
    _store_option,
    _store_path,
    _text,
    _when,
    command_line,
)


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


def _promise_json(promise: Any, store: str) -> dict[str, Any]:
    return {
        "workflow_id": promise.workflow_id,
        "name": promise.name,
        "status": promise.status.value,
        "created_at": promise.created_at.isoformat(),
        "timeout_at": None if promise.timeout_at is None else promise.timeout_at.isoformat(),
        "schema": promise.schema,
        "resolve_command": _resolve_hint(promise, store),
    }


def _resolve_hint(promise: Any, store: str) -> str:
    # --store always: the pasted command answers this store whatever the shell's folder.
    options = [("--value", "<JSON>"), ("--store", _shown(store))]
    return command_line("resolve", [promise.workflow_id, promise.name], options)


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
    store: str | None,
) -> None:
    """List runs, newest first."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors(path):
        found = client.list_runs(status=list(statuses) or None, kind=kind, limit=limit, store=path)
    if as_json:
        _dump([_run_json(r) for r in found])
        return
    from rich.table import Table

    # Plain echo, not a table title: rich would wrap a long store path.
    click.echo(f"{len(found)} run(s) in {_shown(path)}")
    table = Table()
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
def show(workflow_id: str, as_json: bool, store: str | None) -> None:
    """Show a run: status, input and output, its event timeline, pending promises."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors(path):
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
        f"execution {run.execution_id}, created {_when(run.created_at)}, updated {_when(run.updated_at)}{_retry.origin(run)}"
    )
    stuck = client.unattended(run, client.live_engine_ids(store=path))
    if stuck is not None:
        click.echo(f"why is it waiting? {stuck}")
    console.print(_text(f"input:  {_short(run.input, 200)}"))
    console.print(_text(_worker.queue_line(run, str(path))))
    if run.output is not None:
        console.print(_text(f"output: {_short(run.output, 200)}"))
    if run.error is not None:
        console.print(_text(f"error:  {run.error.type}: {run.error.message}"))
        for title, trace in details.failure_tracebacks(run, client.RunSnapshot(run, []).fold()):
            click.echo(f"{title}:\n{trace}")
    table = Table(title="timeline", title_justify="left")
    for column in ("seq", "+ms", "event", "details"):
        table.add_column(column)
    start = run.events[0].ts if run.events else run.created_at
    for e in run.events:
        offset = (e.ts - start).total_seconds() * 1000
        table.add_row(
            str(e.seq), f"{offset:.1f}", e.type.value, _text(details.event_summary(e.payload))
        )
    console.print(table)
    for p in promises:
        due = f", times out {_when(p.timeout_at)} UTC" if p.timeout_at else ""
        # Plain echo: rich would wrap a long command line, and a pasted command must be whole.
        click.echo(f"waiting for promise {p.name!r}{due}:")
        click.echo(f"  {_resolve_hint(p, path)}")


@main.command()
@click.argument("workflow_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the run ends.")
@_store_option
def logs(workflow_id: str, follow: bool, store: str | None) -> None:
    """Print a run's step logs and stream items (tokens as running text)."""
    from flovyn_nb import client
    from flovyn_nb.cli.streams import LogPrinter

    path = _store_path(store)
    with _Errors(path):
        run = client.get_run(workflow_id, events=False, store=path)
        labels: dict[str, str] = {}
        seen = 0
        told_empty = False
        rung = threading.Event()
        # Another process writes the run: its commits ring the store's doorbell.
        feed = client.watch(lambda change: rung.set(), store=path) if follow else None
        printer = LogPrinter(_when)
        while True:
            rung.clear()
            entries = client.run_logs(run.execution_id, store=path)
            if any(
                e.task_execution_id not in labels for e in entries[seen:] if e.task_execution_id
            ):
                folded = client.run_snapshot(run.execution_id, store=path).fold()
                labels = details.step_labels(folded)
            for entry in entries[seen:]:
                printer.write(entry, details.log_label(entry.task_execution_id, labels))
            if not entries and not told_empty:
                told_empty = True  # said once; --follow then prints lines as they come
                click.echo(f"no log lines for run {run.workflow_id}" + (" yet" if follow else ""))
            seen = len(entries)
            if not follow:
                printer.end_line()
                return
            status = client.get_run(workflow_id, events=False, store=path).status
            if status.is_terminal:
                printer.end_line()
                assert feed is not None
                feed.close()
                return
            rung.wait()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_store_option
def promises(as_json: bool, store: str | None) -> None:
    """List promises waiting for an answer, across all runs."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors(path):
        found = client.pending_promises(store=path)
    if as_json:
        _dump([_promise_json(p, path) for p in found])
        return
    from rich.table import Table

    click.echo(f"{len(found)} pending promise(s) in {path}")
    table = Table()
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
def resolve(workflow_id: str, name: str, value: str, early: bool, store: str | None) -> None:
    """Resolve promise NAME of run WORKFLOW_ID with a JSON value."""
    from flovyn_nb import client

    data = _json_value(value, "--value")
    path = _store_path(store)
    with _Errors(path):
        client.resolve_promise(
            workflow_id, name, data, store=path, resolved_by=_who(), allow_early=early
        )
    click.echo(f"resolved {workflow_id}/{name}")


@main.command()
@click.argument("workflow_id")
@click.argument("name")
@click.option("--reason", required=True, help="Why (the workflow sees it in PromiseRejected).")
@_store_option
def reject(workflow_id: str, name: str, reason: str, store: str | None) -> None:
    """Reject promise NAME of run WORKFLOW_ID."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors(path):
        client.reject_promise(
            workflow_id,
            name,
            reason,
            store=path,
            resolved_by=_who(),
            allow_early=False,
        )
    click.echo(f"rejected {workflow_id}/{name}")


@main.command()
@click.argument("workflow_id")
@click.argument("name")
@click.option("--value", "value", default="null", help="The signal's value, as JSON.")
@_store_option
def signal(workflow_id: str, name: str, value: str, store: str | None) -> None:
    """Send signal NAME to run WORKFLOW_ID."""
    from flovyn_nb import client

    data = _json_value(value, "--value")
    path = _store_path(store)
    with _Errors(path):
        client.signal_workflow(workflow_id, name, data, store=path)
    click.echo(f"signalled {workflow_id}/{name}")


@main.command()
@click.argument("workflow_id")
@click.option("--reason", default="", help="Why: the workflow sees it as WorkflowCancelled.reason.")
@_store_option
def cancel(workflow_id: str, reason: str, store: str | None) -> None:
    """Ask run WORKFLOW_ID to stop (its engine cancels it)."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors(path):
        client.cancel_workflow(workflow_id, reason, store=path)
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
def sql(query: str, as_csv: bool, write: bool, store: str | None) -> None:
    """Run a read-only SQL query (one SELECT) over the store's tables."""
    from flovyn_nb import client

    path = _store_path(store)
    with _Errors(path):
        frame = client.sql(query, store=path, write=write)
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
    store: str | None,
) -> None:
    """Run NOTEBOOK unattended with papermill; resume its suspended runs.

    Exits 0 when all its runs completed, 3 when some wait on promises (it prints how to
    answer them), 1 when a run failed or a cell raised.
    """
    from flovyn_nb import batch, client

    path = _store_path(store)
    with _Errors():  # its errors are about the notebook, and name the store when it is at fault
        result = batch.run_notebook(
            notebook,
            parameters=details.parameters(parameters),
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
            with _Errors(path):
                waiting = client.pending_promises(summary.workflow_id, store=path)
            for promise in waiting:
                click.echo(f"  {_resolve_hint(promise, path)}")
            if not waiting:
                show = command_line("show", [summary.workflow_id], [("--store", _shown(path))])
                click.echo(f"  {summary.workflow_id}: a signal or timer ({show})")
        click.echo("then run the notebook again to finish them.")
    sys.exit(result.exit_code)


def _who() -> str:
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


# Commands of other topics live in modules of this package, registered on ``main`` here
# (they import nothing of this package: no import cycle).
from flovyn_nb.cli import retry as _retry
from flovyn_nb.cli import worker as _worker
from flovyn_nb.cli.check import check as _check
from flovyn_nb.cli.migrate import migrate as _migrate

main.add_command(_check)
main.add_command(_migrate)
_retry.register(main, _Errors, _store_option, _store_path, _json_value, command_line)
_worker.register(main, _Errors)
