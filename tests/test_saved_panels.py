"""Saved and exported notebooks show each run's latest state (issue 16, item 1): a real
kernel runs the notebook through nbclient; the run completes in a later cell than the one
that displayed it; nbconvert's HTML of the result must show it COMPLETED."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

START = """\
import flovyn_nb as fn

@fn.workflow(name="later")
async def later(ctx: fn.WorkflowContext) -> str:
    answer = await ctx.promise("go")
    return "final answer: " + answer + " " + "x" * 400

h = fn.start_workflow(later, workflow_id="later-1")
h
"""
FINISH = """\
fn.resolve_promise("later-1", "go", "yes")
h.result(timeout=60)
"""


@pytest.mark.parametrize("mode", ["batch", "interactive"])
def test_exported_html_shows_the_final_state_of_a_run_that_ended_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("FLOVYN_NB_STORE", str(tmp_path / "store.duckdb"))
    monkeypatch.setenv("FLOVYN_NB_MODE", mode)
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("%load_ext flovyn_nb"),
        nbformat.v4.new_code_cell(START),
        nbformat.v4.new_code_cell(FINISH),
    ]
    NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    [output] = notebook.cells[1].outputs
    assert output["output_type"] == "display_data", output
    static = output["data"]["text/html"]
    assert "COMPLETED" in static and "WAITING" not in static, static
    assert "final answer: yes" in static
    assert "COMPLETED" in output["data"]["text/plain"]
    if mode == "interactive":  # the live widget stays in the bundle beside the static form
        assert "application/vnd.jupyter.widget-view+json" in output["data"]
    body, _ = HTMLExporter().from_notebook_node(notebook)
    assert "final answer: yes" in body
    assert "resolve with" not in body.split("final answer: yes")[0].rsplit("later-1", 1)[-1]
