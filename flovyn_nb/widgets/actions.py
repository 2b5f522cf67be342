"""What the panels' buttons do: resolve, reject, cancel, check replay, retry, fork.

Click handlers run on the kernel's main thread, which must never block (a blocked main
thread stops all further clicks), so they only convert the form input and hand the work
to the engine (``resolve_promise_soon`` / ``cancel_soon``), or to a worker thread when no
engine in this process runs on the panel's store. The outcome comes back through a
future; its callback records it and asks the updater to show it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flovyn_nb import client
from flovyn_nb.widgets.forms import FormError, build_form, collect

JSON = Any
Key = tuple[str, str]  # (workflow id, promise name)

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _worker() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="flovyn-panel-action")
        return _pool


def submit(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    """Run ``call`` on the panels' worker threads (never on the kernel's main thread)."""
    return _worker().submit(call, *args, **kwargs)


def describe(exc: BaseException) -> str:
    """An error as the panel shows it: the message, prefixed with the type when unclear."""
    from flovyn_nb.errors import FlovynError

    text = str(exc).strip()
    if isinstance(exc, FlovynError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Actions:
    """Button handling shared by run panels and the dashboard (thread-safe)."""

    def __init__(
        self,
        store: Path | str,
        changed: Callable[[], None],
        *,
        reopened: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self._changed = changed
        self._reopened = reopened  # a retried run changes again (its panel follows it)
        self._again: dict[str, dict[str, JSON]] = {}  # Retry / Fork state, by workflow id
        self._lock = threading.Lock()
        self._forms: dict[Key, dict[str, JSON]] = {}
        self._cancels: dict[str, dict[str, JSON]] = {}
        self._checks: dict[str, dict[str, JSON]] = {}
        self._schemas: dict[Key, JSON] = {}

    # -- the updater thread tells what is pending --------------------------------------

    def set_pending(self, schemas: dict[Key, JSON]) -> None:
        """The promises waiting now (and their schemas); forms of settled ones are dropped."""
        with self._lock:
            self._schemas = dict(schemas)
            for key in [k for k in self._forms if k not in schemas]:
                del self._forms[key]

    def forms(self) -> dict[Key, dict[str, JSON]]:
        with self._lock:
            return {key: dict(value) for key, value in self._forms.items()}

    def cancel_status(self, workflow_id: str) -> dict[str, JSON]:
        with self._lock:
            return dict(self._cancels.get(workflow_id, {}))

    def check_status(self, workflow_id: str) -> dict[str, JSON]:
        with self._lock:
            return dict(self._checks.get(workflow_id, {}))

    def again_status(self, workflow_id: str) -> dict[str, JSON]:
        """The Retry / Fork buttons' state: busy, error, and ``forked`` (the new run's id)."""
        with self._lock:
            return dict(self._again.get(workflow_id, {}))

    # -- the kernel's main thread ------------------------------------------------------

    def handle(self, content: JSON) -> bool:
        """Act on a message from the browser; False when it is not a button message."""
        if not isinstance(content, dict):
            return False
        action = content.get("action")
        workflow_id = str(content.get("workflow_id", ""))
        if action == "resolve":
            values = content.get("values")
            self.resolve(
                workflow_id, str(content.get("promise")), values if isinstance(values, dict) else {}
            )
        elif action == "reject":
            self.reject(workflow_id, str(content.get("promise")), str(content.get("reason", "")))
        elif action == "cancel":
            self.cancel(workflow_id)
        elif action == "check_replay":
            self.check_replay(workflow_id)
        elif action == "retry":
            self.retry(workflow_id)
        elif action == "fork":
            step = content.get("step")
            self.fork(workflow_id, step if isinstance(step, int) else str(step))
        else:
            return False
        return True

    def resolve(self, workflow_id: str, name: str, values: dict[str, JSON]) -> None:
        key = (workflow_id, name)
        with self._lock:
            known = key in self._schemas
            schema = self._schemas.get(key)
        if not known:
            self._set_form(key, error=f"promise {name!r} is no longer waiting", busy=False)
            return
        try:
            value = collect(build_form(schema), values)
        except FormError as exc:
            self._set_form(key, error=str(exc), busy=False, fields=exc.fields)
            return
        self._settle(key, value, reject=False, reason="")

    def settle_value(self, key: Key, value: JSON) -> None:
        """Resolve a pending promise with a value as it is (the dashboard's "resolve
        all selected"); the run checks it against the promise's type."""
        with self._lock:
            known = key in self._schemas
        if not known:
            self._set_form(key, error=f"promise {key[1]!r} is no longer waiting", busy=False)
            return
        self._settle(key, value, reject=False, reason="")

    def fail_form(self, key: Key, error: str) -> None:
        """Show ``error`` on the promise's form."""
        self._set_form(key, error=error, busy=False)

    def reject(self, workflow_id: str, name: str, reason: str) -> None:
        key = (workflow_id, name)
        with self._lock:
            known = key in self._schemas
        if not known:
            self._set_form(key, error=f"promise {name!r} is no longer waiting", busy=False)
            return
        self._settle(key, None, reject=True, reason=reason or "rejected from the panel")

    def cancel(self, workflow_id: str) -> None:
        with self._lock:
            self._cancels[workflow_id] = {"busy": True, "error": None}
        self._changed()
        try:
            future: Future[None] = client.cancel_soon(
                workflow_id, store=self.store
            ) or _worker().submit(client.cancel_workflow, workflow_id, store=self.store)
        except Exception as exc:
            self._cancel_done(workflow_id, exc)
            return
        future.add_done_callback(lambda f: self._cancel_done(workflow_id, f.exception()))

    def check_replay(self, workflow_id: str) -> None:
        """Replay the run on the code registered now (``fn.check_replay``), off the main
        thread: it reads the store and runs the workflow's code against the history."""
        with self._lock:
            self._checks[workflow_id] = {"busy": True, "text": None, "ok": None}
        self._changed()

        def check() -> tuple[bool, str]:
            run = client.get_run(workflow_id, events=False, store=self.store)
            [result] = client.check_replay(run.kind, [workflow_id], store=self.store)
            return result.ok, str(result)

        future = _worker().submit(check)
        future.add_done_callback(lambda f: self._checked(workflow_id, f))

    def retry(self, workflow_id: str) -> None:
        """Retry a failed or cancelled run (in a worker thread: it reads the store)."""
        self._start_again(
            workflow_id, "retry", client.retry_run, workflow_id, reason="Retry button"
        )

    def fork(self, workflow_id: str, step: int | str) -> None:
        """Fork the run from a step (in a worker thread: it replays the kept steps)."""
        self._start_again(workflow_id, "fork", client.fork_run, workflow_id, step)

    def _start_again(
        self, workflow_id: str, what: str, call: Callable[..., Any], *args: Any, **kw: Any
    ) -> None:
        with self._lock:
            self._again[workflow_id] = {"busy": what, "error": None}
        self._changed()
        try:
            future = _worker().submit(call, *args, store=self.store, **kw)
        except Exception as exc:
            self._again_done(workflow_id, what, None, exc)
            return
        future.add_done_callback(
            lambda f: self._again_done(
                workflow_id, what, None if f.exception() else f.result(), f.exception()
            )
        )

    # -- engine loop / worker threads (future callbacks) -------------------------------

    def _again_done(
        self, workflow_id: str, what: str, handle: Any, exc: BaseException | None
    ) -> None:
        with self._lock:
            if exc is not None:
                self._again[workflow_id] = {"busy": None, "error": describe(exc)}
            elif what == "fork":
                self._again[workflow_id] = {"busy": None, "forked": handle.workflow_id}
            else:
                self._again[workflow_id] = {"busy": None, "retried": True}
        if exc is None and what == "retry" and self._reopened is not None:
            self._reopened()
        self._changed()

    def _checked(self, workflow_id: str, future: Future[tuple[bool, str]]) -> None:
        exc = future.exception()
        ok, text = (False, f"cannot check: {describe(exc)}") if exc else future.result()
        with self._lock:
            self._checks[workflow_id] = {"busy": False, "ok": ok, "text": text}
        self._changed()

    def _settle(self, key: Key, value: JSON, *, reject: bool, reason: str) -> None:
        workflow_id, name = key
        self._set_form(key, error=None, busy=True)
        try:
            soon = client.resolve_promise_soon(
                workflow_id, name, value, reject=reject, reason=reason, store=self.store
            )
            if soon is not None:
                future: Future[None] = soon
            else:
                call = client.reject_promise if reject else client.resolve_promise
                argument = reason if reject else value
                future = _worker().submit(
                    call, workflow_id, name, argument, store=self.store, resolved_by="panel"
                )
        except Exception as exc:
            self._set_form(key, error=describe(exc), busy=False)
            return
        future.add_done_callback(lambda f: self._settled(key, f))

    def _settled(self, key: Key, future: Future[None]) -> None:
        exc = future.exception()
        if exc is None:
            # Sent: the form stays disabled until the promise leaves the pending list.
            self._set_form(key, error=None, busy=True, sent=True)
        else:
            self._set_form(key, error=describe(exc), busy=False)

    def _cancel_done(self, workflow_id: str, exc: BaseException | None) -> None:
        with self._lock:
            self._cancels[workflow_id] = (
                {"busy": True, "sent": True, "error": None}
                if exc is None
                else {"busy": False, "error": describe(exc)}
            )
        self._changed()

    def _set_form(self, key: Key, **status: JSON) -> None:
        with self._lock:
            self._forms[key] = status
        self._changed()
