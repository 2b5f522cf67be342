"""Who watches the runs: listeners on the loop (panels, logs) and threads blocked until a
run ends (``wait_finished``, thread-safe)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from flovyn_nb.engine.core import EngineCore, Listener
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import UnknownWorkflow
from flovyn_nb.model import RunStatus
from flovyn_nb.store import EventRow, LogRow


class Listeners(EngineCore):
    """Listeners (panels, logs) on the loop, and threads waiting for runs to end."""

    def observe_event(self, execution_id: str, row: EventRow) -> None:
        for listener in list(self._listeners):
            self._notify(listener, "event", execution_id, row)

    def submit_log(self, execution_id: str, row: LogRow) -> None:
        """Queue a log line (thread-safe: sync steps log from worker threads)."""
        if self.thread.in_loop():
            self._log_on_loop(execution_id, row)
        else:
            self.thread.spawn(self._log_async, execution_id, row)

    async def _log_async(self, execution_id: str, row: LogRow) -> None:
        self._log_on_loop(execution_id, row)

    def _log_on_loop(self, execution_id: str, row: LogRow) -> None:
        self.writer.submit(Write(logs=[row]))
        for listener in list(self._listeners):
            self._notify(listener, "log", execution_id, row)

    def _notify(self, listener: Listener, what: str, execution_id: str, data: Any) -> None:
        try:
            listener(what, execution_id, data)
        except Exception as exc:
            self._internal_error(f"listener failed: {exc!r}")

    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def wait_finished(self, execution_id: str, timeout: float | None) -> tuple[RunStatus, Any, Any]:
        """Block until the run ends; returns (status, output JSON, error JSON)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self.thread.failure is not None:
                raise self.thread.failure
            woken = threading.Event()
            with self._finished:
                state = self._final.get(execution_id)
                running_here = execution_id in self.runs
                self._finish_waiters.setdefault(execution_id, set()).add(woken)
            try:
                if state is not None and self._final_gen.get(execution_id) != self.bell_gen:
                    # Another process wrote since it ended here: it may have retried it.
                    # (The row is flushed first, so a row still catching up with the end
                    # is not mistaken for a retry.)
                    if self.thread.running and not self.thread.in_loop():
                        self.thread.call(self.writer.flush)
                    stored = self.store.run_status(execution_id)
                    if stored is not None and not stored[0].is_terminal:
                        state = None
                elif state is None and not running_here:
                    state = self.store.run_status(execution_id)
                    if state is None:
                        raise UnknownWorkflow(f"no run with execution id {execution_id}")
                if state is not None and state[0].is_terminal:
                    return state
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"run did not finish within {timeout:g} s")
                woken.wait(0.5 if remaining is None else min(remaining, 0.5))
            finally:
                with self._finished:
                    waiters = self._finish_waiters.get(execution_id)
                    if waiters is not None:
                        waiters.discard(woken)
                        if not waiters:
                            del self._finish_waiters[execution_id]
            if not self.thread.running:
                # Without an engine only another process can finish it: watch the bell.
                time.sleep(self.poll_interval)

    def _record_end(self, execution_id: str, status: RunStatus, output: Any, error: Any) -> None:
        """A run ended here: tell the listeners and wake the threads waiting for it."""
        for listener in list(self._listeners):
            self._notify(listener, "finished", execution_id, status)
        with self._finished:
            self._final[execution_id] = (status, output, error)
            self._final_gen[execution_id] = self.bell_gen
            while len(self._final) > 1000:  # only recent ends are kept; older ones are read
                oldest = next(iter(self._final))
                del self._final[oldest]
                self._final_gen.pop(oldest, None)
        self._wake_finish_waiters(execution_id)

    def _wake_finish_waiters(self, execution_id: str | None) -> None:
        """Wake the threads waiting for this run to end (None: for any run)."""
        with self._finished:
            if execution_id is None:
                waiters = [w for ws in self._finish_waiters.values() for w in ws]
            else:
                waiters = list(self._finish_waiters.get(execution_id, ()))
        for woken in waiters:
            woken.set()
