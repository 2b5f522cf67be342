"""A dry replay: does the code registered now issue a recorded prefix of steps again?

Before a fork is created, its workflow's current code is run against the steps it will
reuse, answering every command from the record and executing nothing (no task body, no
``ctx.run`` function, no timer, no store write). It stops, satisfied, at the first
command past the prefix (or one whose outcome the prefix does not hold); a command that
differs from the record is the :class:`DeterminismViolation` of ordinary replay, naming
the step. Runs in a thread of its own (a notebook's loop may be running in the caller's).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from flovyn_nb import serde
from flovyn_nb.context import StepHandle, SyncWorkflowContext, WorkflowContext
from flovyn_nb.definitions import RetryPolicy, TaskDefinition, WorkflowDefinition, registry
from flovyn_nb.engine import threads
from flovyn_nb.engine.commands.children import ChildCommands
from flovyn_nb.engine.tasks import task_failure
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import DeterminismViolation, InvalidInput, WorkflowCancelled
from flovyn_nb.history.replay import History, Recorded
from flovyn_nb.model import EventType as E
from flovyn_nb.store import HistoryEvent

T = TypeVar("T")

__all__ = ["check_prefix"]


class _PastPrefix(BaseException):
    """The code went past the recorded prefix: everything before matched."""


def check_prefix(
    definition: WorkflowDefinition[Any],
    workflow_id: str,
    events: list[HistoryEvent],
    input_json: Any,
    *,
    seed: str,
    timeout: float = 30.0,
) -> None:
    """Replay ``events`` (a run's kept prefix) against ``definition``'s code, with input
    ``input_json``, executing nothing.

    Raises:
        DeterminismViolation: the code issues another step than the record (names it).
        InvalidInput: the input does not fit, or the code raised while replaying the
            prefix (the message says what it raised), or it did not get past the prefix
            within ``timeout`` seconds.
    """
    history = History(workflow_id, events)
    run = _DryRun(history, workflow_id, seed)

    def replay() -> None:
        if definition.is_async:
            asyncio.run(run.execute(definition, input_json))
        else:
            run.execute_sync(definition, input_json)
        history.check_complete("the workflow returned")

    finished, _, exc = threads.apart(replay, timeout)
    if not finished:
        raise InvalidInput(
            f"replaying the recorded steps of {workflow_id!r} against the current code did "
            f"not finish within {timeout:g} s (does the workflow block outside ctx calls?)"
        )
    if exc is None or isinstance(exc, _PastPrefix):
        return
    if isinstance(exc, DeterminismViolation | InvalidInput):
        raise exc
    raise InvalidInput(
        f"the current code of workflow {definition.name!r} raised {type(exc).__name__}: "
        f"{exc} while replaying the recorded steps of {workflow_id!r}; fix it, or fork "
        "from an earlier step"
    ) from None


class _DryRun:
    """Implements ``context.RunCommands`` from a recorded history only."""

    def __init__(self, history: History, workflow_id: str, seed: str) -> None:
        import hashlib

        self.history = history
        self.workflow_id = workflow_id
        self.execution_id = seed
        self.cancel_requested = False
        self.rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest()[:8], "big"))
        self.logger = logging.getLogger("flovyn.dry-replay")
        self.logger.addHandler(logging.NullHandler())
        self.logger.propagate = False
        self._counters: dict[str, int] = {}
        self.state: dict[str, Any] = {}

    def _args(self, definition: WorkflowDefinition[Any], input_json: Any) -> tuple[Any, ...]:
        value = serde.from_json(input_json, definition.input_type, what="workflow input")
        ctx = WorkflowContext(self) if definition.is_async else SyncWorkflowContext(self)
        return (ctx, value) if definition.takes_input else (ctx,)

    async def execute(self, definition: WorkflowDefinition[Any], input_json: Any) -> None:
        await definition.fn(*self._args(definition, input_json))

    def execute_sync(self, definition: WorkflowDefinition[Any], input_json: Any) -> None:
        definition.fn(*self._args(definition, input_json))

    def _match(self, family: str, identity: str | None, issued: str) -> Recorded:
        index = self._counters.get(family, 0)
        self._counters[family] = index + 1
        rec = self.history.match(family, index, identity, issued)
        if rec is None:
            raise _PastPrefix
        return rec

    def _outcome(self, key: str) -> Recorded:
        outcome = self.history.outcomes.get(key)
        if outcome is None:  # in flight at the cut: it runs again, past the prefix
            raise _PastPrefix
        return outcome

    # -- commands --------------------------------------------------------------------

    def schedule_async(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> StepHandle:
        definition = task if isinstance(task, TaskDefinition) else registry.task(task)
        rec = self._match("task", definition.name, f"schedule(task {definition.name!r})")
        self.rng.getrandbits(128)
        outcome = self._outcome(rec.payload["taskExecutionId"])
        wait = Wait(definition.name)
        if outcome.type is E.TASK_COMPLETED:
            wait.set_value(
                serde.from_json(outcome.payload.get("output"), definition.return_type, what="task")
            )
        elif outcome.type is E.TASK_CANCELLED:
            wait.set_error(WorkflowCancelled(workflow_id=self.workflow_id))
        else:
            wait.set_error(task_failure(definition, outcome.payload))
        return StepHandle(wait, definition.name, self)

    async def schedule(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
    ) -> Any:
        return await self.schedule_async(task, input, timeout, retry_policy)

    def schedule_workflow_async(
        self, workflow: WorkflowDefinition[Any] | str, input: Any, workflow_id: str | None
    ) -> StepHandle:
        definition = (
            workflow if isinstance(workflow, WorkflowDefinition) else registry.workflow(workflow)
        )
        rec = self._match("child", definition.name, f"schedule_workflow({definition.name!r})")
        self.rng.getrandbits(128)
        outcome = self._outcome(rec.payload["childExecutionId"])
        wait = Wait(definition.name)
        ChildCommands._settle_child(self, wait, definition, outcome.type, outcome.payload)  # type: ignore[arg-type]
        return StepHandle(wait, definition.name, self)

    async def sleep(self, duration: timedelta | float) -> None:
        index = self._counters.get("timer", 0)
        self._match("timer", None, "sleep()")
        self._outcome(f"timer-{index + 1}")

    async def sleep_until(self, when: datetime) -> None:
        await self.sleep(0)

    async def promise(self, name: str, timeout: timedelta | float | None, type_hint: Any) -> Any:
        from flovyn_nb.engine.commands.promises import PromiseCommands

        rec = self._match("promise", name, f"promise({name!r})")
        outcome = self._outcome(rec.payload["promiseId"])
        return PromiseCommands._promise_outcome(
            self,  # type: ignore[arg-type]
            name,
            outcome.type,
            outcome.payload,
            type_hint,
        )

    async def wait_for_signal(
        self, name: str, timeout: timedelta | float | None, type_hint: Any
    ) -> Any:
        recorded = self.history.next_signal(name)
        if recorded is None:
            raise _PastPrefix
        return serde.from_json(recorded.payload.get("value"), type_hint, what=f"signal {name!r}")

    async def run_operation(
        self,
        name: str,
        fn: Callable[[], Any],
        type_hint: Any,
        max_attempts: int = 1,
        retry_interval: timedelta | float = 0,
    ) -> Any:
        rec = self._match("operation", name, f"run({name!r})")
        return serde.from_json(rec.payload.get("result"), Any, what=f"result of {name!r}")

    def get_state(self, key: str, default: Any, type_hint: Any) -> Any:
        if key not in self.state:
            return default
        return serde.from_json(self.state[key], type_hint, what=f"state {key!r}")

    def set_state(self, key: str, value: Any) -> None:
        rec = self._match("state", f"set:{key}", f"set({key!r})")
        self.state[key] = rec.payload.get("value")

    def clear_state(self, key: str) -> None:
        self._match("state", f"clear:{key}", f"clear({key!r})")
        self.state.pop(key, None)

    def clear_all_state(self) -> None:
        for key in sorted(self.state):
            self.clear_state(key)

    def state_keys(self) -> list[str]:
        return sorted(self.state)

    def current_time(self) -> datetime:
        rec = self._match("operation", "current_time", "current_time()")
        return datetime.fromisoformat(rec.payload["result"])

    def pending_signals(self, name: str) -> int:
        return len(self.history.signals.get(name, ()))

    def drain_signals(self, name: str, type_hint: Any) -> list[Any]:
        values = []
        while (recorded := self.history.next_signal(name)) is not None:
            values.append(serde.from_json(recorded.payload.get("value"), type_hint, what=name))
        return values

    # -- a `def` workflow's thread ----------------------------------------------------

    def blocking(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        return asyncio.run(fn(*args))

    def blocking_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(*args)
