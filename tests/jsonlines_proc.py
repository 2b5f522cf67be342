"""A helper process for multi-process tests: JSON lines on stdout, optional commands on stdin."""

from __future__ import annotations

import contextlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any


class JsonLinesProc:
    """Runs ``python SCRIPT ARGS`` and reads the ``{"event": ...}`` lines it prints."""

    def __init__(
        self,
        script: Path,
        args: list[str],
        *,
        cwd: Path,
        log: Path,
        env: dict[str, str],
        stdin: bool = False,
        startup: float = 60.0,  # a cold interpreter importing duckdb on a loaded machine
    ) -> None:
        self.name = script.name
        self.startup = startup
        self._stderr = log.open("wb")
        self.popen = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=cwd,
            env=env,
        )
        self.pid = self.popen.pid
        self.log = log
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, event: str, timeout: float | None = None) -> dict[str, Any]:
        """The next message of this kind; fails if the process dies or reports an error."""
        timeout = self.startup if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"no {event!r} from {self.name} ({self.pid}) within {timeout} s"
                )
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                self.popen.wait(timeout=5)
                raise AssertionError(
                    f"{self.name} ({self.pid}) exited ({self.popen.returncode}) before {event!r}:\n"
                    + self.log.read_text(errors="replace")[-3000:]
                )
            message: dict[str, Any] = json.loads(line)
            if message["event"] == "error":
                raise AssertionError(f"{self.name} ({self.pid}) failed: {message}")
            if message["event"] == event:
                return message

    def send(self, command: str) -> None:
        assert self.popen.stdin is not None, "started without stdin"
        self.popen.stdin.write(command.encode() + b"\n")
        self.popen.stdin.flush()

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """``kill -9`` and reap (a zombie's PID would still count as alive)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._reader.join(timeout=10)
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self._stderr.close()
