"""Re-run the example notebooks in place so their saved outputs are real outputs of a run.

`python notebooks/refresh.py [NAME.ipynb ...]` executes each notebook top to bottom with
nbclient, in a fresh temporary store, and writes it back with its outputs (which nbval
then checks in `make test`).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def refresh(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="flovyn-nb-") as folder:
        os.environ["FLOVYN_NB_STORE"] = str(Path(folder) / "flovyn.duckdb")
        NotebookClient(notebook, timeout=300, resources={"metadata": {"path": folder}}).execute()
    nbformat.write(notebook, path)
    print(f"refreshed {path.name}")


def main(names: list[str]) -> None:
    paths = [HERE / name for name in names] or sorted(HERE.glob("[0-9]*.ipynb"))
    for path in paths:
        refresh(path)


if __name__ == "__main__":
    main(sys.argv[1:])
