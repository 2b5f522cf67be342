"""Loading a worker's definitions: from a Python module, a ``.py`` file, or the
definition cells of a notebook (without running the rest of it).

Which cells of a notebook are definitions:

1. The code cells tagged ``flovyn-definitions`` or ``parameters``, when any cell carries
   one of these tags (IPython magics and shell lines, ``%…``/``!…``, are dropped).
2. Otherwise the code cells whose top-level statements are all *definitions*: imports;
   assignments whose value is a constant (``x = 3``, ``URL = "…"``, tuples/lists/dicts
   of constants, with or without an annotation); ``def``/``async def``/``class``
   statements whose decorators are only ``workflow``, ``task`` (bare, called, or as an
   attribute such as ``fn.workflow(...)``) or ``dataclass``; docstrings and ``pass``.
   A cell with anything else (a call, a loop, ``fn.start(...)``, a magic) is not run.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import linecache
import sys
import types
from pathlib import Path
from typing import Any

from flovyn_nb.errors import InvalidInput

TAGS = {"flovyn-definitions", "parameters"}
_DECORATORS = {"workflow", "task", "dataclass"}


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _constant(node: ast.expr | None) -> bool:
    if node is None:
        return True
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def _is_definition(node: ast.stmt) -> bool:
    match node:
        case ast.Import() | ast.ImportFrom() | ast.Pass():
            return True
        case ast.Expr(value=ast.Constant(value=str())):
            return True  # a docstring
        case ast.Assign(value=value):
            return _constant(value)
        case ast.AnnAssign(value=value):
            return _constant(value)
        case ast.FunctionDef() | ast.AsyncFunctionDef() | ast.ClassDef():
            return all(_decorator_name(d) in _DECORATORS for d in node.decorator_list)
    return False


def is_definition_cell(source: str) -> bool:
    """Whether a cell holds only definitions (see the module docs)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False  # magics, or broken code: not ours to run
    return bool(tree.body) and all(_is_definition(node) for node in tree.body)


def _strip_magics(source: str) -> str:
    return "\n".join(
        "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
    )


def definition_cells(notebook: Path) -> list[tuple[int, str]]:
    """(index, source) of the notebook's definition cells, in order.

    Raises:
        InvalidInput: the file is not a readable notebook.
    """
    try:
        data = json.loads(notebook.read_text(encoding="utf-8"))
        cells = [c for c in data["cells"] if c.get("cell_type") == "code"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"cannot read the notebook {notebook}: {exc}") from None
    sources = [
        (i, c["source"] if isinstance(c["source"], str) else "".join(c["source"]))
        for i, c in enumerate(cells)
    ]
    tagged = [i for i, c in enumerate(cells) if TAGS & set(c.get("metadata", {}).get("tags", []))]
    if tagged:
        return [(i, _strip_magics(src)) for i, src in sources if i in tagged]
    return [(i, src) for i, src in sources if is_definition_cell(src)]


def _run_cells(notebook: Path, cells: list[tuple[int, str]]) -> None:
    name = f"flovyn_notebook_{abs(hash(str(notebook.resolve())))}"
    module = types.ModuleType(name)
    module.__file__ = str(notebook)
    sys.modules[name] = module  # typing.get_type_hints resolves names through it
    for index, source in cells:
        filename = f"{notebook}#cell{index}"
        # Registered like a file, so that inspect.getsource finds the definitions'
        # source (the catalog records it) and tracebacks show the lines.
        lines = [line + "\n" for line in source.splitlines()]
        linecache.cache[filename] = (len(source), None, lines, filename)
        code = compile(source, filename, "exec")
        exec(code, module.__dict__)  # noqa: S102  (the user's own definition cells)


def _import_file(path: Path) -> None:
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)  # its sibling modules import as they would for python
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise InvalidInput(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)


def load(source: str) -> str:
    """Import the definitions of ``source``: a notebook (``.ipynb``), a Python file, or
    an importable module name. Returns what was loaded, for the log.

    Raises:
        InvalidInput: nothing there, or importing it failed (the error says why).
    """
    path = Path(source)
    try:
        if path.suffix == ".ipynb":
            if not path.is_file():
                raise InvalidInput(f"no notebook at {path}")
            cells = definition_cells(path)
            if not cells:
                raise InvalidInput(
                    f"{path} has no definition cells: tag the cells that define the "
                    "workflows 'flovyn-definitions' (see flovyn-nb worker --help)"
                )
            _run_cells(path, cells)
            return f"notebook {path} (cells {', '.join(str(i) for i, _ in cells)})"
        if path.suffix == ".py" or path.is_file():
            if not path.is_file():
                raise InvalidInput(f"no Python file at {path}")
            _import_file(path)
            return f"file {path}"
        importlib.import_module(source)
        return f"module {source}"
    except InvalidInput:
        raise
    except ModuleNotFoundError as exc:
        if exc.name == source or source.startswith(f"{exc.name}."):
            raise InvalidInput(
                f"no module named {source!r}: give an importable module, a .py file or a "
                ".ipynb notebook"
            ) from None
        raise _failed(source, exc) from None
    except Exception as exc:
        raise _failed(source, exc) from None


def _failed(source: str, exc: BaseException) -> InvalidInput:
    where: Any = exc.__traceback__
    while where is not None and where.tb_next is not None:
        where = where.tb_next
    line = "" if where is None else f" ({where.tb_frame.f_code.co_filename}:{where.tb_lineno})"
    return InvalidInput(f"loading {source} failed: {type(exc).__name__}: {exc}{line}")
