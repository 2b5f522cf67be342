"""The ``%flovyn`` line magic: runs, promises and the store from a notebook cell.

Bad arguments and errors from the store (no such run, a promise already resolved, bad SQL)
show as IPython's one-line ``UsageError``, never as a traceback. The line is taken
literally (no ``$var`` or ``{expr}`` expansion), because JSON values are full of braces;
with variables, call the functions instead (``fn.resolve_promise(wid, name, value)``).
Values that end the line (``VALUE_JSON``, ``REASON``, ``QUERY``) may contain spaces and
need no quotes.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import no_var_expand

from flovyn_nb import client
from flovyn_nb.client import retry
from flovyn_nb.errors import FlovynError
from flovyn_nb.kernel import mode as modes
from flovyn_nb.kernel import waiting
from flovyn_nb.kernel.tables import Table, clip

__all__ = ["USAGE", "flovyn_magic", "register"]

USAGE = {
    "runs": "%flovyn runs [--status S] [--kind K] [--limit N]",
    "show": "%flovyn show ID",
    "start": "%flovyn start NAME [--input JSON] [--id WORKFLOW_ID]",
    "resolve": "%flovyn resolve ID NAME VALUE_JSON",
    "reject": "%flovyn reject ID NAME REASON",
    "cancel": "%flovyn cancel ID [REASON]",
    "retry": "%flovyn retry ID",
    "fork": "%flovyn fork SOURCE STEP [--id NEW] [--input JSON]",
    "panel": "%flovyn panel ID",
    "dashboard": "%flovyn dashboard",
    "sql": "%flovyn sql QUERY",
    "wait": "%flovyn wait [--timeout S]",
    "check": "%flovyn check NAME [--run ID ...]",
    "debug": "%flovyn debug ID STEP",
    "--mode": "%flovyn --mode batch|interactive",
}
HELP = "usage:\n" + "\n".join(f"  {line}" for line in USAGE.values())


class _Usage(Exception):
    """A bad command line; the message is what the user sees (one line)."""


def register(ipython: Any) -> None:
    ipython.register_magic_function(flovyn_magic, magic_kind="line", magic_name="flovyn")
    retry.on_existing_run(None)  # once, however often the extension is loaded
    retry.on_existing_run(_hint_old_failure)


@no_var_expand
def flovyn_magic(line: str) -> Any:
    """%flovyn runs|show|start|resolve|reject|cancel|retry|fork|panel|dashboard|sql|wait|check|…

    Run ``%flovyn`` alone for the usage of every subcommand.
    """
    words = _Words(line)
    try:
        command = words.next()
    except _Usage as exc:
        raise UsageError(f"%flovyn: {exc}") from None
    if command is None or command in ("help", "-h", "--help"):
        sys.stdout.write(HELP + "\n")
        return None
    if command.startswith("--mode"):
        return _mode_command(command, words)
    handler = _COMMANDS.get(command)
    if handler is None:
        raise UsageError(
            f"%flovyn: unknown command {command!r}; use one of {', '.join(USAGE)} "
            "(%flovyn alone shows how)"
        )
    try:
        return handler(words)
    except _Usage as exc:
        raise UsageError(f"%flovyn {command}: {exc}; usage: {USAGE[command]}") from None
    except (FlovynError, TimeoutError) as exc:
        raise UsageError(f"%flovyn {command}: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


# One word: unquoted characters and quoted stretches, up to unquoted whitespace.
_WORD = re.compile(r"""(?:[^\s'"]+|'[^']*'|"(?:[^"\\]|\\.)*")+""")


class _Words:
    """Leading words of a magic line (shell-like quoting), then the raw rest of it."""

    def __init__(self, line: str) -> None:
        self._line = line
        self._pos = 0

    def next(self) -> str | None:
        text = self._line
        while self._pos < len(text) and text[self._pos].isspace():
            self._pos += 1
        if self._pos == len(text):
            return None
        match = _WORD.match(text, self._pos)
        if match is None:  # an opening quote with no closing one
            raise _Usage("no closing quotation")
        self._pos = match.end()
        return shlex.split(match.group())[0]

    def need(self, what: str) -> str:
        word = self.next()
        if word is None:
            raise _Usage(f"missing {what}")
        return word

    def rest(self, *, unquote: bool = True) -> str:
        """The rest of the line; with ``unquote``, a rest that is one quoted word loses its
        quotes."""
        text = self._line[self._pos :].strip()
        self._pos = len(self._line)
        return _unquoted(text) if unquote else text

    def options(self) -> list[str]:
        try:
            return shlex.split(self.rest(unquote=False))
        except ValueError as exc:
            raise _Usage(str(exc).lower()) from None

    def end(self) -> None:
        extra = self.rest()
        if extra:
            raise _Usage(f"unexpected {clip(extra, 30)!r}")


def _unquoted(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            parts = shlex.split(text)
        except ValueError:
            return text
        if len(parts) == 1:
            return parts[0]
    return text


class _Parser(argparse.ArgumentParser):
    """argparse that reports instead of printing and exiting."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog=prog, add_help=False, allow_abbrev=False)

    def error(self, message: str) -> NoReturn:
        raise _Usage(message)

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _Usage(message or "bad arguments")


def _json_value(text: str, what: str) -> Any:
    """JSON as typed, or inside shell quotes (``'{"a": 1}'``)."""
    for candidate in dict.fromkeys([text, _unquoted(text)]):
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise _Usage(
        f"{what} must be JSON, e.g. true, 42, '\"yes\"' or '{{\"approved\": true}}' "
        f"(got {clip(text, 30)!r})"
    )


# -- subcommands --------------------------------------------------------------------------


def _runs(words: _Words) -> Table:
    parser = _Parser("runs")
    parser.add_argument("--status", action="append")
    parser.add_argument("--kind")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args(words.options())
    runs = client.list_runs(status=args.status, kind=args.kind, limit=args.limit)
    return Table(
        ["workflow_id", "kind", "status", "created_at", "updated_at"],
        [
            [
                r.workflow_id,
                r.kind,
                r.status.value,
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                f"{r.updated_at:%Y-%m-%d %H:%M:%S}",
            ]
            for r in runs
        ],
        title=f"{len(runs)} run(s)",
        empty="no runs",
    )


def _show(words: _Words) -> Table:
    workflow_id = words.need("ID")
    words.end()
    run = client.get_run(workflow_id)
    facts = [f"run {run.workflow_id} ({run.kind}): {run.status.value}"]
    if run.output is not None:
        facts.append("output: " + clip(json.dumps(run.output, default=str), 100))
    if run.error is not None:
        facts.append(f"error: {run.error.type}: {clip(run.error.message, 100)}")
    facts.extend(f"pending promise {p.name!r}" for p in client.pending_promises(run.workflow_id))
    stuck = client.unattended(run, client.live_engine_ids())
    if stuck is not None:
        facts.append(f"why is it waiting? {stuck}")
    return Table(
        ["seq", "type", "ts", "payload"],
        [
            [
                e.seq,
                e.type,
                f"{e.ts:%H:%M:%S.%f}"[:-3],
                clip(json.dumps(e.payload, default=str), 70),
            ]
            for e in run.events
        ],
        title="\n".join(facts),
        empty="no events yet",
    )


def _start(words: _Words) -> None:
    name = words.need("NAME")
    parser = _Parser("start")
    parser.add_argument("--input")
    parser.add_argument("--id", dest="workflow_id")
    args = parser.parse_args(words.options())
    value = None if args.input is None else _json_value(args.input, "--input")
    handle = client.start_workflow(name, value, workflow_id=args.workflow_id)
    from IPython.display import display

    display(handle)  # type: ignore[no-untyped-call]


def _resolve(words: _Words) -> None:
    workflow_id = words.need("ID")
    name = words.need("NAME")
    text = words.rest(unquote=False)
    if not text:
        raise _Usage("missing VALUE_JSON")
    client.resolve_promise(workflow_id, name, _json_value(text, "VALUE_JSON"), resolved_by="magic")
    sys.stdout.write(f"resolved promise {name!r} of run {workflow_id!r}\n")


def _reject(words: _Words) -> None:
    workflow_id = words.need("ID")
    name = words.need("NAME")
    reason = words.rest()
    if not reason:
        raise _Usage("missing REASON")
    client.reject_promise(workflow_id, name, reason, resolved_by="magic")
    sys.stdout.write(f"rejected promise {name!r} of run {workflow_id!r}\n")


def _cancel(words: _Words) -> None:
    workflow_id = words.need("ID")
    reason = words.rest()  # optional: the workflow sees it as WorkflowCancelled.reason
    client.get_run(workflow_id, events=False)  # an unknown id is an error, not a no-op
    client.cancel_workflow(workflow_id, reason)
    sys.stdout.write(f"cancellation requested for run {workflow_id!r}\n")


def _retry(words: _Words) -> None:
    workflow_id = words.need("ID")
    words.end()
    handle = client.retry_run(workflow_id, reason="%flovyn retry")
    from IPython.display import display

    display(handle)  # type: ignore[no-untyped-call]


def _fork(words: _Words) -> None:
    source = words.need("SOURCE")
    step = words.need("STEP")
    parser = _Parser("fork")
    parser.add_argument("--id", dest="workflow_id")
    parser.add_argument("--input")
    args = parser.parse_args(words.options())
    options: dict[str, Any] = {}
    if args.input is not None:
        options["input"] = _json_value(args.input, "--input")
    handle = client.fork_run(
        source, int(step) if step.isdigit() else step, workflow_id=args.workflow_id, **options
    )
    from IPython.display import display

    display(handle)  # type: ignore[no-untyped-call]


def hint_text(workflow_id: str) -> str:
    """The one line shown when a start hands back an old failure of changed code."""
    return (
        f"flovyn_nb: run {workflow_id!r} already failed with older code, and starting it "
        f"again returned that failure; to run it again with the code now, call "
        f"fn.retry_run({workflow_id!r}) (or start it with id_reuse='retry_failed')"
    )


def _hint_old_failure(handle: Any, definition: Any) -> None:
    """``start_workflow`` handed back an existing run: if it failed with other code than
    the workflow's now, say how to run it again (in the cell that started it)."""
    failed = client.run_source_hashes(definition.name, status="FAILED")
    if handle.workflow_id not in failed or failed[handle.workflow_id] == definition.source_hash:
        return
    from IPython.display import display

    display({"text/plain": hint_text(handle.workflow_id)}, raw=True)  # type: ignore[no-untyped-call]


def _panel(words: _Words) -> Any:
    workflow_id = words.need("ID")
    words.end()
    client.get_run(workflow_id, events=False)  # no widget at all for an unknown run
    from flovyn_nb.widgets import RunPanel

    return RunPanel(workflow_id)


def _dashboard(words: _Words) -> Any:
    words.end()
    # The class, not widgets.dashboard(): importing the widgets.dashboard submodule
    # rebinds that package attribute to the module.
    from flovyn_nb.widgets import Dashboard

    return Dashboard()


def _sql(words: _Words) -> Any:
    query = words.rest()
    if not query:
        raise _Usage("missing QUERY")
    return client.sql(query)


def _wait(words: _Words) -> waiting.RunsSummary:
    parser = _Parser("wait")
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args(words.options())
    return waiting.wait_all(timeout=args.timeout)


def _check(words: _Words) -> None:
    name = words.need("NAME")
    parser = _Parser("check")
    parser.add_argument("--run", action="append", dest="runs")
    args = parser.parse_args(words.options())
    results = client.check_replay(name, args.runs)
    if not results:
        sys.stdout.write(f"no runs of {name!r} in flight: nothing to check\n")
        return
    sys.stdout.write("".join(f"{r}\n" for r in results))
    bad = sum(1 for r in results if not r.ok)
    verdict = "all replay OK" if not bad else f"{bad} would fail with DeterminismViolation"
    sys.stdout.write(f"{len(results)} run(s) checked against the code registered now: {verdict}\n")


def _debug(words: _Words) -> None:
    workflow_id = words.need("ID")
    step = words.need("STEP")
    words.end()
    record = client.step_record(workflow_id, step)
    from IPython import get_ipython

    shell = get_ipython()
    shell.user_ns.update(
        step_record=record,
        step_input=record.input,
        step_output=record.output,
        step_error=record.error,
    )
    rerun = "; step_record.rerun() calls the task as defined now" if record.kind == "task" else ""
    sys.stdout.write(
        f"step {record.number} {record.name!r} of run {record.workflow_id!r} "
        f"({record.status}): set step_input, step_output, step_error, step_record{rerun}\n"
    )


def _mode_command(first: str, words: _Words) -> None:
    value = first.partition("=")[2] or words.next()
    try:
        if value is None:
            raise ValueError("missing batch|interactive")
        words.end()
        mode = modes.parse_mode(value, source="--mode")
    except (ValueError, _Usage) as exc:
        raise UsageError(f"%flovyn --mode: {exc}; usage: {USAGE['--mode']}") from None
    modes.set_mode(mode)
    sys.stdout.write(f"flovyn_nb: {mode} mode\n")


_COMMANDS: dict[str, Callable[[_Words], Any]] = {
    "runs": _runs,
    "show": _show,
    "start": _start,
    "resolve": _resolve,
    "reject": _reject,
    "cancel": _cancel,
    "retry": _retry,
    "fork": _fork,
    "panel": _panel,
    "dashboard": _dashboard,
    "sql": _sql,
    "wait": _wait,
    "check": _check,
    "debug": _debug,
}
