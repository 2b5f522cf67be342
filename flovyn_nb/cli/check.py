"""``flovyn-nb check NAME --module M``: would the code in M replay the recorded runs?

Runs without an engine: the workflow's code comes from ``--module`` (a module name, a
``.py`` file, or a notebook whose definition statements are taken: imports, ``def``,
``class`` and decorated definitions; every other statement is skipped, so nothing is
started or printed). The recorded histories are read from the store and replayed on that
code with nothing executed (see ``fn.check_replay``). Exit 0 when every run replays, 1
when one does not (or on an error), 2 for bad usage.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

# The command is added to ``flovyn-nb`` by cli/__init__ (main.add_command): this module
# imports nothing of the cli package, so the two are in no import cycle.


@click.command()
@click.argument("name")
@click.option(
    "--module",
    "-m",
    "modules",
    multiple=True,
    required=True,
    help="Where the workflow and its tasks are defined: a module name, a .py file or a "
    ".ipynb notebook (its imports and definitions only). Repeat for several.",
)
@click.option("--run", "runs", multiple=True, help="Check this run (default: all in flight).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--store",
    "store",
    default=None,
    help="Store file or postgresql:// URL (default: $FLOVYN_NB_STORE, then the nearest .flovyn/).",
)
def check(
    name: str, modules: tuple[str, ...], runs: tuple[str, ...], as_json: bool, store: str | None
) -> None:
    """Replay the recorded runs of workflow NAME on its current code, executing nothing.

    Exits 1 when any run would fail with DeterminismViolation (it names the step, what
    history recorded and what the code issues now).
    """
    from flovyn_nb import client
    from flovyn_nb.errors import FlovynError

    for module in modules:
        load_definitions(module)
    try:
        path = client.store_target(store)
        results = client.check_replay(name, list(runs) or None, store=path)
    except FlovynError as exc:
        raise click.ClickException(" ".join(str(exc).split())) from None
    bad = [r for r in results if not r.ok]
    if as_json:
        click.echo(json.dumps([_result_json(r) for r in results], indent=2, default=str))
    elif not results:
        click.echo(f"no runs of {name!r} in flight: nothing to check")
    else:
        for result in results:
            click.echo(str(result))
        verdict = "all replay OK" if not bad else f"{len(bad)} would fail on replay"
        click.echo(f"{len(results)} run(s) of {name!r} checked: {verdict}")
    if bad:
        sys.exit(1)


def _result_json(result: Any) -> dict[str, Any]:
    error = result.error
    data: dict[str, Any] = {
        "workflow_id": result.workflow_id,
        "ok": result.ok,
        "steps": result.steps,
        "stopped": result.stopped,
        "error": None,
    }
    if error is not None:
        data["error"] = {
            "type": type(error).__name__,
            "message": str(error),
            "step": getattr(error, "step", None),
            "recorded": getattr(error, "recorded", None),
            "issued": getattr(error, "issued", None),
        }
    return data


def load_definitions(target: str) -> None:
    """Import the workflows and tasks defined by a module name, a .py file or a notebook.

    Raises:
        click.ClickException: it cannot be read or imported (one line, exit 1).
    """
    path = Path(target)
    try:
        if path.suffix == ".ipynb":
            _exec_notebook_definitions(path)
        elif path.suffix == ".py":
            _exec_file(path)
        else:
            sys.path.insert(0, str(Path.cwd()))
            importlib.import_module(target)
    except click.ClickException:
        raise
    except Exception as exc:
        message = " ".join(str(exc).split())
        raise click.ClickException(
            f"could not load definitions from {target!r}: {type(exc).__name__}: {message}"
        ) from None


def _exec_file(path: Path) -> None:
    if not path.is_file():
        raise click.ClickException(f"no such file: {path}; give a .py file, a notebook or a module")
    sys.path.insert(0, str(path.resolve().parent))  # its own imports, as when run as a script
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise click.ClickException(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)


# Statements of a notebook taken as definitions; calls, starts and prints are skipped.
_DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _exec_notebook_definitions(path: Path) -> None:
    """Import the definition statements of a notebook's code cells, as one module."""
    if not path.is_file():
        raise click.ClickException(f"no such notebook: {path}")
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{path} is not a notebook (bad JSON: {exc.msg})") from None
    kept: list[str] = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        # IPython magics and shell escapes are no Python: leave those lines out.
        lines = ["" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines()]
        try:
            tree = ast.parse("\n".join(lines))
        except SyntaxError:
            continue  # a cell of IPython syntax only (e.g. a %%bash cell)
        kept += [ast.unparse(node) for node in tree.body if isinstance(node, _DEFINITIONS)]
    folder = Path(tempfile.mkdtemp(prefix="flovyn-check-"))
    module = folder / f"{path.stem.replace('-', '_')}_definitions.py"
    module.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    sys.path.insert(0, str(path.resolve().parent))  # modules beside the notebook
    _exec_file(module)
