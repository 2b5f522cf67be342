"""nbval runs the example notebooks against a fresh store (never the user's own)."""

from __future__ import annotations

import os
import tempfile

import pytest

_folder = tempfile.TemporaryDirectory(prefix="flovyn-nbval-")


def pytest_configure(config: pytest.Config) -> None:
    # The kernels nbval starts inherit this environment.
    os.environ["FLOVYN_NB_STORE"] = os.path.join(_folder.name, "flovyn.duckdb")
    # Saved outputs are the static renderings of a batch run (as nbclient/papermill make
    # them): nbval compares those, not live widget views.
    os.environ["FLOVYN_NB_MODE"] = "batch"
