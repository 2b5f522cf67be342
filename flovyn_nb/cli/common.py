"""What every ``flovyn-nb`` command shares: the ``--store`` option, one-line errors,
JSON values from the command line, printing (times, short values, user text), and
:func:`command_line` for command lines printed for the user to paste."""

from __future__ import annotations

import json
import os
import shlex
import sys
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
        # A str, not a click.Path: a URL keeps its "//"; a folder gets the store's error.
        type=str,
        default=None,
        help=(
            "Store file or postgresql:// URL (default: $FLOVYN_NB_STORE, else the nearest "
            ".flovyn/ up to the project's top, else .flovyn/ at the project's top)."
        ),
    )(fn)


def _store_path(store: str | None) -> str:
    from flovyn_nb import client

    return client.store_target(store)


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
    """Turn flovyn errors into one clear line and exit code 1; the line names the store
    it is about (a run "not found" in the wrong store is the usual surprise)."""

    def __init__(self, store: str | Path | None = None) -> None:
        self.store = None if store is None else _shown(str(store))

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        from flovyn_nb.errors import FlovynError

        if exc is not None and isinstance(exc, FlovynError):
            message = str(exc)
            if self.store is not None and str(self.store) not in message:
                message = f"{message} (store: {self.store})"
            raise click.ClickException(message) from None


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


def _shown(store: str) -> str:  # a URL's password is never printed
    return __import__("flovyn_nb.client").client.store_location(store)  # type: ignore[no-any-return]


def _text(value: str) -> Any:
    """User data for a rich table or line: printed as is, never read as [markup]."""
    from rich.text import Text

    return Text(value)
