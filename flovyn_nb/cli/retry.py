"""``flovyn-nb retry`` and ``flovyn-nb fork``: run a run again from the command line.

Neither needs an engine in this process: the commands write the store, and the kernel
or worker that has the workflow registered runs the retry or the fork (at its next
heartbeat, within seconds).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

__all__ = ["origin", "register", "step_arg"]


def step_arg(text: str) -> int | str:
    """A step as typed: a number (1-based position) or a step name."""
    return int(text) if text.isdigit() else text


def origin(run: Any) -> str:
    """What ``show`` adds to a run's header: the run it was forked from, its attempt."""
    events = run.events
    started = events[0].payload if events else {}
    parts = []
    if started.get("forkedFrom"):
        parts.append(f"forked from {started['forkedFrom']} at step {started.get('fromStep')}")
    retries = [e.payload for e in events if e.type.value == "WORKFLOW_RETRIED"]
    if retries:
        last = retries[-1]
        where = f"step {last['fromStep']}" if last.get("fromStep") else "its last step"
        parts.append(f"attempt {len(retries) + 1} (retried from {where})")
    return "".join(f", {part}" for part in parts)


def register(
    main: click.Group,
    errors: Callable[[], Any],
    store_option: Callable[[Any], Any],
    store_path: Callable[[str | None], str],
    json_value: Callable[[str, str], Any],
    command_line: Callable[..., str],
) -> None:
    """Add ``retry`` and ``fork`` to ``main`` with the CLI's shared helpers (passed in,
    so this module does not import the CLI package back)."""

    @main.command()
    @click.argument("workflow_id")
    @click.option("--reason", default="retried from the command line", help="Recorded with it.")
    @store_option
    def retry(workflow_id: str, reason: str, store: str | None) -> None:
        """Run failed or cancelled run WORKFLOW_ID again, from its failed step, with the
        code registered now (the steps before it are reused, not run again)."""
        from flovyn_nb import client

        path = store_path(store)
        with errors():
            handle = client.retry_run(workflow_id, reason=reason, store=path)
            run = client.get_run(handle.workflow_id, store=path)
        marker = next(e for e in reversed(run.events) if e.type.value == "WORKFLOW_RETRIED")
        step = marker.payload.get("fromStep")
        where = f"from step {step}" if step else "after its last step"
        click.echo(
            f"retrying {workflow_id} (attempt {marker.payload.get('attempt')}) {where}; "
            f"the kernel or worker that has {run.kind!r} registered runs it"
        )
        show = command_line("show", [workflow_id], [("--store", str(path))])
        click.echo(f"  follow it: {show}")

    @main.command()
    @click.argument("source_id")
    @click.argument("step")
    @click.option("--id", "new_id", default=None, help="The new run's id (default: SOURCE-fork-N).")
    @click.option("--input", "input_text", default=None, help="A new input, as JSON.")
    @store_option
    def fork(
        source_id: str, step: str, new_id: str | None, input_text: str | None, store: str | None
    ) -> None:
        """Start a new run from SOURCE_ID that reuses its steps before STEP (a 1-based
        number or a step name) and runs STEP onward with the code registered now."""
        from flovyn_nb import client

        path = store_path(store)
        options: dict[str, Any] = {}
        if input_text is not None:
            options["input"] = json_value(input_text, "--input")
        with errors():
            handle = client.fork_run(
                source_id, step_arg(step), workflow_id=new_id, store=path, **options
            )
            run = client.get_run(handle.workflow_id, store=path)
        started = run.events[0].payload if run.events else {}
        click.echo(
            f"forked {source_id} from step {started.get('fromStep')} as {handle.workflow_id}; "
            f"the kernel or worker that has {run.kind!r} registered runs it"
        )
        show = command_line("show", [handle.workflow_id], [("--store", str(path))])
        click.echo(f"  follow it: {show}")
