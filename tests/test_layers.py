"""The layers of ARCHITECTURE.md §1, checked on the source: the import graph of
``flovyn_nb/`` is computed with ``ast`` (every import, function-level and TYPE_CHECKING
ones included: a cycle held apart only by them is still a cycle in the design)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "flovyn_nb"

# Database drivers and the only folder allowed to import each.
DRIVERS = {
    "duckdb": "flovyn_nb.store.duckdb",
    "psycopg": "flovyn_nb.store.postgres",
    "psycopg2": "flovyn_nb.store.postgres",
    "psycopg_pool": "flovyn_nb.store.postgres",
    "asyncpg": "flovyn_nb.store.postgres",
}
MAX_LINES = 600
# Modules still over MAX_LINES, each with its line count when listed. The list may only
# shrink; a module may not grow.
TOO_LONG: dict[str, int] = {}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names; ``from x import y`` of a submodule
    ``y`` counts as an import of ``x.y`` only, not of the package ``x``)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names}
            submodules &= MODULES.keys()
            found.update(submodules)
            if len(submodules) < len(node.names):  # names defined by the module itself
                found.add(target)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _inside(module: str, folder: str) -> bool:
    return module == folder or module.startswith(folder + ".")


def test_database_drivers_are_imported_only_by_their_backend() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        for driver, home in DRIVERS.items()
        if _inside(target, driver) and not _inside(module, home)
    ]
    assert wrong == []


def test_only_the_store_package_knows_its_backends() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if _inside(target, "flovyn_nb.store.duckdb") and not _inside(module, "flovyn_nb.store")
    ]
    assert wrong == []


def test_modules_stay_under_600_lines() -> None:
    lengths = {
        str(path.relative_to(ROOT)): len(path.read_text().splitlines()) for path in MODULES.values()
    }
    too_long = {path: n for path, n in lengths.items() if n > MAX_LINES}
    grown = {path: n for path, n in too_long.items() if n > TOO_LONG.get(path, MAX_LINES)}
    assert grown == {}, f"over {MAX_LINES} lines (or longer than allowed): {grown}"
    fixed = sorted(set(TOO_LONG) - set(too_long))
    assert fixed == [], f"now short enough: take them off TOO_LONG: {fixed}"


def _cycles() -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH[node] & MODULES.keys()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return components


def test_the_graph_finds_a_cycle_when_there_is_one() -> None:
    """The checker itself: a made-up cycle is found."""
    GRAPH["flovyn_nb.errors"].add("flovyn_nb.model")
    GRAPH["flovyn_nb.model"].add("flovyn_nb.errors")
    try:
        assert ["flovyn_nb.errors", "flovyn_nb.model"] in _cycles()
    finally:
        GRAPH["flovyn_nb.errors"].discard("flovyn_nb.model")
        GRAPH["flovyn_nb.model"].discard("flovyn_nb.errors")


def test_there_is_no_import_cycle() -> None:
    assert _cycles() == []


def test_the_user_side_and_the_engine_are_in_no_cycle() -> None:
    """context.py declares what it needs of a run (RunCommands) and the run reaches its
    engine through engine.host: neither the context nor any engine module is in a cycle."""
    tangled = [
        c
        for c in _cycles()
        if any(m == "flovyn_nb.context" or _inside(m, "flovyn_nb.engine") for m in c)
    ]
    assert tangled == []


def test_the_client_and_the_widgets_are_in_no_cycle() -> None:
    tangled = [
        c
        for c in _cycles()
        if "flovyn_nb.client" in c or any(_inside(m, "flovyn_nb.widgets") for m in c)
    ]
    assert tangled == []


def test_the_context_imports_nothing_of_the_engine() -> None:
    assert {t for t in GRAPH["flovyn_nb.context"] if _inside(t, "flovyn_nb.engine")} == set()


# How code crosses between threads; for the engine, only engine/threads.py may do it.
THREAD_HOPS = {"from_thread", "to_thread", "run_in_executor", "BlockingPortal", "Thread"}
THREADS_MODULE = "flovyn_nb.engine.threads"


def _thread_hops(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Attribute) and node.attr in THREAD_HOPS:
            found.add(node.attr)
        elif isinstance(node, ast.Name) and node.id in THREAD_HOPS:
            found.add(node.id)
        elif isinstance(node, ast.ImportFrom | ast.Import):
            for alias in node.names:
                found.update(THREAD_HOPS & set(alias.name.split(".")))
            if isinstance(node, ast.ImportFrom) and node.module:
                found.update(THREAD_HOPS & set(node.module.split(".")))
    return found


def test_one_module_owns_every_thread_hop_of_the_engine() -> None:
    """The portal, the executor for `def` tasks, calls from other threads and worker
    threads: engine/threads.py only (the context and the client use it too)."""
    users = {
        name: hops
        for name, path in MODULES.items()
        if (_inside(name, "flovyn_nb.engine") or name in {"flovyn_nb.context", "flovyn_nb.client"})
        and name != THREADS_MODULE
        and (hops := _thread_hops(path))
    }
    assert users == {}
    assert _thread_hops(MODULES[THREADS_MODULE]) >= THREAD_HOPS


# The layers above the client (ARCHITECTURE.md §1) and what they must not import: they read
# through flovyn_nb.client (the history fold is pure and fine; the replay index is the engine's).
UPPER = [
    "flovyn_nb.widgets",
    "flovyn_nb.kernel",
    "flovyn_nb.cli",
    "flovyn_nb.batch",
    "flovyn_nb.server",
    "flovyn_nb.worker",
]
BELOW_THE_CLIENT = ["flovyn_nb.store", "flovyn_nb.engine", "flovyn_nb.history.replay"]


def _reaches_below(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} imports {target}"
        for module, targets in graph.items()
        if any(_inside(module, upper) for upper in UPPER)
        for target in sorted(targets)
        if any(_inside(target, below) for below in BELOW_THE_CLIENT)
    ]


def test_widgets_kernel_cli_and_batch_go_through_the_client() -> None:
    assert _reaches_below(GRAPH) == []


def test_the_layer_check_finds_a_reach_below_the_client() -> None:
    """The checker itself: a made-up import of the store by a panel is found."""
    graph = {
        **GRAPH,
        "flovyn_nb.widgets.panel": GRAPH["flovyn_nb.widgets.panel"] | {"flovyn_nb.store"},
    }
    assert _reaches_below(graph) == ["flovyn_nb.widgets.panel imports flovyn_nb.store"]


def test_the_store_package_is_in_no_cycle() -> None:
    tangled = [c for c in _cycles() if any(_inside(m, "flovyn_nb.store") for m in c)]
    assert tangled == []
