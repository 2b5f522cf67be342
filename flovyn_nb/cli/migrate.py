"""``flovyn-nb migrate --from PATH_OR_URL --to PATH_OR_URL``: move a store's history."""

from __future__ import annotations

import click


@click.command("migrate")
@click.option("--from", "source", required=True, help="The store to copy (path or URL).")
@click.option("--to", "target", required=True, help="The store to copy into (path or URL).")
def migrate(source: str, target: str) -> None:
    """Copy runs, events, promises, signals and logs from one store into another (e.g. a
    DuckDB file into PostgreSQL). Run it again to copy what is new: nothing is copied
    twice. Prints each table's counts, verified after the copy."""
    from flovyn_nb import client
    from flovyn_nb.errors import FlovynError

    try:
        copied = client.migrate_store(source, target)
    except FlovynError as exc:  # one line, exit 1, as every command
        raise click.ClickException(str(exc)) from None
    for c in copied:
        click.echo(
            f"{c.table}: {c.copied} copied; {c.source} in the source, {c.target} in the target"
        )
    click.echo(
        f"verified: {client.store_location(target)} holds every row of "
        f"{client.store_location(source)}"
    )
