"""How the server tests start ``owner_proc.py`` (seeding, a kernel-like owner, a resolver):
other processes, so that the server's process (the tests') never has workflow code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from jsonlines_proc import JsonLinesProc

HELPER = Path(__file__).resolve().parent / "owner_proc.py"
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPER.parents[2]), *sys.path])}


def helper(folder: Path, *args: str, startup: float = 60.0) -> JsonLinesProc:
    """``owner_proc.py ARGS`` in ``folder`` (its stderr in ``folder/<command>.log``)."""
    return JsonLinesProc(
        HELPER, list(args), cwd=folder, log=folder / f"{args[0]}.log", env=ENV, startup=startup
    )
