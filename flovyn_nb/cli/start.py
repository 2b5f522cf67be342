"""``flovyn-nb start``: start a run from a terminal, for whichever engine serves its queue."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

__all__ = ["register"]


def register(main: click.Group, errors: Callable[[], Any]) -> None:
    """Add ``start`` to ``main``."""

    @main.command()
    @click.argument("name")
    @click.option("--input", "input_text", default="null", help="The input, as JSON.")
    @click.option("--id", "workflow_id", default=None, help="The workflow id (idempotent).")
    @click.option("--queue", default="default", show_default=True, help="The queue.")
    @click.option("--store", default=None, help="Store file or URL.")
    @click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
    def start(
        name: str,
        input_text: str,
        workflow_id: str | None,
        queue: str,
        store: str | None,
        as_json: bool,
    ) -> None:
        """Start a run of workflow NAME; an engine or worker serving the queue runs it.

        The input is checked against the schema the workflow's engines recorded.
        """
        from flovyn_nb import client

        try:
            value = json.loads(input_text)
        except ValueError as exc:
            raise click.ClickException(
                f"--input is not valid JSON ({exc}); e.g. --input '{{\"n\": 1}}'"
            ) from None
        with errors():
            handle = client.start_workflow(
                name, value, workflow_id=workflow_id, queue=queue, store=store
            )
            served = client.queue_info(queue, store=store).engines
        if not served:  # on stderr: --json output stays one document
            click.echo(
                f"no live engine serves queue {queue!r} yet: start "
                f"`flovyn-nb worker MODULE --queue {queue}`",
                err=True,
            )
        if as_json:
            data = {
                "workflow_id": handle.workflow_id,
                "execution_id": handle.execution_id,
                "kind": handle.kind,
                "queue": queue,
                "queue_served_by": served,
            }
            click.echo(json.dumps(data, indent=2))
            return
        click.echo(f"started {handle.workflow_id} ({handle.kind}) on queue {queue!r}")
