"""``flovyn-nb schedules``: list, pause, resume and delete cron schedules."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click

__all__ = ["register"]


def _json(info: Any) -> dict[str, Any]:
    return {
        "name": info.name,
        "workflow": info.kind,
        "cron": info.cron,
        "input": info.input,
        "queue": info.queue,
        "catch_up": info.catch_up,
        "paused": info.paused,
        "next_fire": None if info.next_fire is None else info.next_fire.isoformat(),
        "last_slot": None if info.last_slot is None else info.last_slot.isoformat(),
    }


def register(main: click.Group, errors: Callable[[], Any]) -> None:
    """Add the ``schedules`` group to ``main``."""

    store_option = click.option("--store", default=None, help="Store file or URL.")
    json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable.")

    @main.group(invoke_without_command=True)
    @store_option
    @json_option
    @click.pass_context
    def schedules(ctx: click.Context, store: str | None, as_json: bool) -> None:
        """Cron schedules of the store (alone: the same as ``schedules list``)."""
        if ctx.invoked_subcommand is None:
            ctx.invoke(list_, store=store, as_json=as_json)

    @schedules.command("list")
    @store_option
    @json_option
    def list_(store: str | None, as_json: bool) -> None:
        """Every schedule: its workflow, cron, next fire time (UTC) and state."""
        from flovyn_nb import client

        with errors():
            found = client.list_schedules(store=store)
        if as_json:
            click.echo(json.dumps([_json(s) for s in found], indent=2))
            return
        if not found:
            click.echo("no schedules")
        for s in found:
            state = "paused" if s.paused else f"next {_when(s.next_fire)}"
            click.echo(f"{s.name:<24} {s.kind:<24} {s.cron:<16} {s.queue:<12} {state}")

    def _change(verb: str, function: str) -> Callable[..., None]:
        @store_option
        @click.argument("name")
        def command(name: str, store: str | None) -> None:
            from flovyn_nb import client  # imported late: the CLI starts fast

            with errors():
                getattr(client, function)(name, store=store)
            click.echo(f"{verb} schedule {name!r}")

        command.__doc__ = f"{verb.capitalize()} the schedule NAME."
        return command

    schedules.command("pause")(_change("paused", "pause_schedule"))
    schedules.command("resume")(_change("resumed", "resume_schedule"))
    schedules.command("delete")(_change("deleted", "delete_schedule"))


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")
