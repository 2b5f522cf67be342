"""What ``flovyn-nb worker`` runs of a notebook: its definition cells, tagged or
detected, never the rest."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from flovyn_nb.definitions import registry
from flovyn_nb.errors import InvalidInput
from flovyn_nb.worker import loading


def notebook(path: Path, *cells: tuple[str, list[str]]) -> Path:
    data = {
        "cells": [
            {"cell_type": "code", "metadata": {"tags": tags}, "source": source, "outputs": []}
            for source, tags in cells
        ]
        + [{"cell_type": "markdown", "metadata": {}, "source": "# notes"}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(data))
    return path


DEFS = '''import flovyn_nb as fn
from dataclasses import dataclass

RATE = 1.5
NAMES: tuple[str, ...] = ("a", "b")

@dataclass
class Order:
    amount: float

@fn.task(name="ld-price")
def price(order: Order) -> float:
    return order.amount * RATE

@fn.workflow(name="ld-flow")
async def flow(ctx: fn.WorkflowContext, order: Order) -> float:
    """Prices an order."""
    return await ctx.schedule(price, order)
'''


def test_detected_definition_cells_run_and_nothing_else(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = notebook(
        tmp_path / "nb.ipynb",
        ("%load_ext flovyn_nb", []),
        (DEFS, []),
        (f"open({str(marker)!r}, 'w').write('x')", []),
        ("fn.start_workflow(flow, Order(3))", []),
        ("import os\nLIMIT = 3\nLIMIT = os.cpu_count()", []),  # a call: not a constant
    )
    assert [i for i, _ in loading.definition_cells(path)] == [1]
    loaded = loading.load(str(path))
    assert loaded == f"notebook {path} (cells 1)"
    assert not marker.exists()
    definition = registry.workflow("ld-flow")
    assert "Prices an order." in inspect.getsource(definition.fn)  # the catalog's source


def test_tagged_cells_win_and_lose_their_magics(tmp_path: Path) -> None:
    path = notebook(
        tmp_path / "tagged.ipynb",
        ("%load_ext flovyn_nb\nimport flovyn_nb as fn\nprint('setup')", ["flovyn-definitions"]),
        ("X = 1", []),
        ("Y = 2", ["parameters"]),
    )
    assert loading.definition_cells(path) == [
        (0, "\nimport flovyn_nb as fn\nprint('setup')"),
        (2, "Y = 2"),
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import x\nA = {'k': [1, 2]}\n'''doc'''\npass", True),
        ("@other\ndef f(): ...", False),
        ("@fn.workflow(name='x')\nasync def f(ctx): ...\n@task\ndef g(): ...", True),
        ("for i in range(3): pass", False),
        ("x = f()", False),
        ("%time 1", False),
        ("", False),
    ],
)
def test_the_detection_rule(source: str, expected: bool) -> None:
    assert loading.is_definition_cell(source) is expected


def test_a_notebook_without_definitions_is_one_clear_error(tmp_path: Path) -> None:
    path = notebook(tmp_path / "none.ipynb", ("print(1)", []))
    with pytest.raises(InvalidInput, match="has no definition cells"):
        loading.load(str(path))
    with pytest.raises(InvalidInput, match="no notebook at"):
        loading.load(str(tmp_path / "missing.ipynb"))
    (tmp_path / "bad.ipynb").write_text("{not json")
    with pytest.raises(InvalidInput, match="cannot read the notebook"):
        loading.load(str(tmp_path / "bad.ipynb"))
