"""A real ipykernel driven through jupyter_client, for tests of the kernel extension.

``Kernel.run(code)`` executes one cell and returns what the cell showed: everything
arrives on IOPub with the cell's request as parent, and a cell is over when the kernel
reports ``idle`` for it. Every wait has a deadline; nothing sleeps and hopes.
"""

from __future__ import annotations

import os
import queue
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager


@dataclass
class Cell:
    """The outputs of one executed cell."""

    code: str
    status: str = ""
    stdout: str = ""
    stderr: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)  # execute_result data
    displays: list[dict[str, Any]] = field(default_factory=list)  # display_data data
    error: dict[str, Any] | None = None

    @property
    def result(self) -> str:
        """The cell's value as text/plain (its last expression)."""
        assert self.results, f"cell had no result:\n{self.describe()}"
        return str(self.results[-1].get("text/plain", ""))

    @property
    def texts(self) -> str:
        """Everything the cell showed, as plain text."""
        parts = [self.stdout, self.stderr]
        parts += [str(d.get("text/plain", "")) for d in self.displays + self.results]
        if self.error:
            parts.append("\n".join(self.error["traceback"]))
        return "\n".join(parts)

    def describe(self) -> str:
        return f"--- cell ---\n{self.code}\n--- status {self.status} ---\n{self.texts}"


class Kernel:
    """One ipykernel process with a working folder and environment of the test's choosing."""

    def __init__(
        self, cwd: Path, env: dict[str, str | None], *, extra_arguments: list[str] | None = None
    ) -> None:
        self.cwd = cwd
        self.env = env
        self.extra_arguments = extra_arguments or []
        self.km = KernelManager(kernel_name="python3")
        self.kc: BlockingKernelClient | None = None

    def start(self, timeout: float = 30) -> Kernel:
        # None in env removes a variable (e.g. a FLOVYN_NB_MODE set in the developer's shell).
        environment = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
        for key, value in self.env.items():
            if value is None:
                environment.pop(key, None)
            else:
                environment[key] = value
        self.km.start_kernel(
            cwd=str(self.cwd), env=environment, extra_arguments=self.extra_arguments
        )
        self._connect(timeout)
        return self

    def _connect(self, timeout: float) -> None:
        kc = self.km.client()
        kc.start_channels()
        kc.wait_for_ready(timeout=timeout)
        self.kc = kc

    def restart(self, timeout: float = 30) -> None:
        """Shut the kernel down cleanly (atexit handlers run) and start a new one."""
        assert self.kc is not None
        self.kc.stop_channels()
        self.km.restart_kernel(now=False)
        self._connect(timeout)

    def shutdown(self) -> None:
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km.has_kernel:
            self.km.shutdown_kernel(now=False)

    @property
    def pid(self) -> int:
        return int(self.run("import os; os.getpid()").result)

    # -- cells --------------------------------------------------------------------------

    def submit(self, code: str) -> str:
        assert self.kc is not None
        return str(self.kc.execute(textwrap.dedent(code), store_history=True))

    def collect(self, msg_id: str, code: str = "", timeout: float = 60) -> Cell:
        """The outputs of the cell with request ``msg_id``, once the kernel is idle."""
        assert self.kc is not None
        cell = Cell(code)
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"cell did not finish within {timeout} s\n{cell.describe()}")
            try:
                msg = self.kc.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    cell.stdout += content["text"]
                else:
                    cell.stderr += content["text"]
            elif kind == "execute_result":
                cell.results.append(content["data"])
            elif kind == "display_data":
                cell.displays.append(content["data"])
            elif kind == "error":
                cell.error = content
            elif kind == "status" and content["execution_state"] == "idle":
                break
        while True:
            remaining = max(deadline - time.monotonic(), 1.0)
            reply = self.kc.get_shell_msg(timeout=remaining)
            if reply["parent_header"].get("msg_id") == msg_id:
                cell.status = reply["content"]["status"]
                return cell

    def run(self, code: str, *, timeout: float = 60, ok: bool = True) -> Cell:
        """Execute a cell; with ``ok`` (the default) it must not raise."""
        cell = self.collect(self.submit(code), code, timeout)
        if ok:
            assert cell.status == "ok", cell.describe()
        return cell

    def send_comm(self, target: str, data: dict[str, Any]) -> None:
        """Open a comm and send one message on it, as a frontend's button click does."""
        assert self.kc is not None
        comm_id = uuid.uuid4().hex
        for kind, content in (
            ("comm_open", {"comm_id": comm_id, "target_name": target, "data": {}}),
            ("comm_msg", {"comm_id": comm_id, "data": data}),
        ):
            self.kc.shell_channel.send(self.kc.session.msg(kind, content))
