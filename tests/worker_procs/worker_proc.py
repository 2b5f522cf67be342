"""A ``flovyn-nb worker`` process for the tests (tests/test_worker.py,
tests/test_panel_queue.py), serving ``worker_defs.py`` by default."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

from flovyn_nb.testing import wait_until

DEFS = Path(__file__).parent / "worker_defs.py"


class Worker:
    """A ``flovyn-nb worker`` process whose stderr lines are collected as they come."""

    def __init__(
        self, store: Path | str, effects: Path, *options: str, source: Path = DEFS
    ) -> None:
        env = {**os.environ, "FLOVYN_TEST_EFFECTS": str(effects), "FLOVYN_NB_LOCK_TIMEOUT": "60"}
        command = [sys.executable, "-m", "flovyn_nb.cli", "worker", str(source)]
        self.popen = subprocess.Popen(
            [*command, "--store", str(store), *options],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> str:
        """The process id, as the test workflows write it into their side-effect files."""
        return str(self.popen.pid)

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 60) -> str:
        def found() -> str | None:
            return next((line for line in self.lines if re.search(pattern, line)), None)

        return wait_until(found, timeout=timeout, message=f"{pattern!r} in {self.lines}")

    def claimed(self) -> list[str]:
        return [m.group(1) for line in self.lines if (m := re.search(r"claimed run (\S+)", line))]

    def stop(self, timeout: float = 60) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        code = self.popen.wait(timeout=timeout)
        self._close()
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=60)
        self._close()

    def _close(self) -> None:
        self._reader.join(timeout=10)
        if self.popen.stderr is not None:
            self.popen.stderr.close()
