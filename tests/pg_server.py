"""The throwaway PostgreSQL server of the tests: the bench's (``bench/pgserver.py``), so
both start it the same way."""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parent.parent)  # the repository: ``bench`` lives there
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

from bench.pgserver import PgServer, PgServerError, bin_dir

__all__ = ["PgServer", "PgServerError", "bin_dir"]
