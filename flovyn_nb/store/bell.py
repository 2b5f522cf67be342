"""The doorbell: a file whose modification time moves after every commit.

Other processes learn that the store changed with one ``stat`` instead of opening the
database; they re-read only when the bell moved.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path


class Bell:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._last_rung = 0

    def ring(self) -> None:
        with self._lock:
            # An explicit, strictly increasing nanosecond stamp: two rings never look alike
            # even where the file system's own timestamps are coarse.
            stamp = max(time.time_ns(), self._last_rung + 1)
            self._last_rung = stamp
            try:
                os.utime(self.path, ns=(stamp, stamp))
            except FileNotFoundError:
                with contextlib.suppress(OSError):
                    self.path.touch()
                    os.utime(self.path, ns=(stamp, stamp))
            except OSError:
                pass

    def read(self) -> int:
        """The bell's current stamp (0 when it was never rung)."""
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return 0

    def rung_by_me(self, stamp: int) -> bool:
        return stamp == self._last_rung
