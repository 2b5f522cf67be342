"""Starting, talking to and always stopping the bench's worker processes."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent


class WorkerError(RuntimeError):
    pass


class Worker:
    """A ``python -m bench.worker`` process; its stderr goes to a log file in ``workdir``."""

    def __init__(self, role: str, system: str, store: Path, *args: Any, workdir: Path) -> None:
        self.spawned = time.time()
        self.log = workdir / f"worker-{role}-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log_file = self.log.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.worker", role, system, str(store), *map(str, args)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )
        self.pid = self.proc.pid
        self._lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._lines.put(line)
        self._lines.put(None)

    def expect(self, timeout: float) -> dict[str, Any]:
        """The next JSON line the worker prints (raises if it ends or takes too long)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                raise WorkerError(
                    f"worker {self.pid} said nothing for {timeout:g} s{self._tail()}"
                ) from None
            if line is None:
                code = self.proc.wait(timeout=10)
                raise WorkerError(f"worker {self.pid} exited with {code}{self._tail()}")
            line = line.strip()
            if line.startswith("{"):
                return dict(json.loads(line))

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def finish(self, timeout: float = 60) -> int:
        """Close stdin and wait for a clean exit (raise on a non-zero exit code)."""
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        code = self.proc.wait(timeout=timeout)
        if code != 0:
            raise WorkerError(f"worker {self.pid} exited with {code}{self._tail()}")
        return code

    def stop(self) -> None:
        """Make sure the process is gone (terminate, then kill)."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        self._log_file.close()

    def _tail(self) -> str:
        self._log_file.flush()
        try:
            text = self.log.read_text()[-3000:]
        except OSError:
            return ""
        return f"; its stderr ends with:\n{text}" if text.strip() else ""

    def cpu_seconds(self) -> float:
        """utime + stime of the process so far, from /proc/<pid>/stat."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks


@contextlib.contextmanager
def worker(role: str, system: str, store: Path, *args: Any, workdir: Path) -> Iterator[Worker]:
    w = Worker(role, system, store, *args, workdir=workdir)
    try:
        yield w
    finally:
        w.stop()
