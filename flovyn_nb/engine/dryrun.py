"""Replay a recorded history against the code registered now, executing nothing.

A dry run re-executes the workflow's code with every command answered from the
history, as a recovered run is, but with no engine behind it: no task body runs, no
``ctx.run`` function is called, nothing is written to a store, no timer or promise
waits. It stops at the end of the history, which is where the run stands: the code
issues a command history has not recorded, or waits on a step that has no recorded
outcome yet. Reaching that point is success; a :class:`DeterminismViolation` on the way
(or any other error the code raises while history says the run went on) is the answer
``fn.check_replay`` reports.

The code runs on a private event loop in a thread of its own, so a check can be made
from a notebook cell (whose thread has a running loop), the CLI (no engine at all) or an
engine's registration hook alike.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

import anyio

from flovyn_nb import serde
from flovyn_nb.context import StepHandle
from flovyn_nb.definitions import (
    Registry,
    RetryPolicy,
    TaskDefinition,
    WorkflowDefinition,
    registry,
)
from flovyn_nb.engine import logcapture
from flovyn_nb.engine.clock import SystemClock
from flovyn_nb.engine.deadlines import Deadline
from flovyn_nb.engine.faults import is_code_failure
from flovyn_nb.engine.host import Host
from flovyn_nb.engine.run import Run
from flovyn_nb.engine.threads import offload, run_on_private_loop
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import DeterminismViolation
from flovyn_nb.history.replay import History, describe
from flovyn_nb.model import EventType, RunStatus, _Payload

__all__ = ["DryRunResult", "dry_replay"]


class EndOfHistory(BaseException):
    """The code reached the end of the recorded history (a BaseException: user code's
    ``except Exception:`` must not swallow it)."""

    def __init__(self, waits_on: str | None = None) -> None:
        super().__init__(waits_on or "end of history")
        self.waits_on = waits_on


@dataclass(frozen=True)
class DryRunResult:
    """How the replay of one history went.

    ``error`` is None when the code replayed every recorded step (it then stopped at the
    end of history, or returned as the history says it did); otherwise the
    :class:`DeterminismViolation` (or other error) that stopped it. ``steps`` is the
    number of recorded steps the code re-issued; ``stopped`` says where it stopped.
    """

    workflow_id: str
    error: BaseException | None
    steps: int
    stopped: str


class _Guarded:
    """A step handle's outcome in a dry run: awaiting one with no recorded outcome is the
    end of history (nothing would ever set it)."""

    __slots__ = ("_wait",)

    def __init__(self, wait: Any) -> None:
        self._wait = wait

    @property
    def done(self) -> bool:
        return bool(self._wait.done)

    @property
    def label(self) -> str:
        return str(self._wait.label)

    async def result(self) -> Any:
        if not self._wait.done:
            raise EndOfHistory(self._wait.label)
        return await self._wait.result()


class _DryHost:
    """The parts of ``Host`` a replaying run touches, doing nothing (see module doc)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.clock = SystemClock()
        self.rng = random.Random(0)
        self.bell_gen = 0
        self.deadlines = self
        self.tasks = self
        self.remote = self
        self.queues = ["default"]
        self.workflow_threads = anyio.CapacityLimiter(4)

    # deadlines: nothing ever fires in a dry run
    def add(self, when: float, callback: Callable[[], None]) -> Deadline:
        return Deadline(when, 0, callback)

    # tasks: a recorded task with no outcome stays pending (its wait is the end of history)
    def start(self, *args: Any, **kwargs: Any) -> None:
        return None

    # queued tasks and children elsewhere: their outcome is not recorded, so it never comes
    def enqueue(self, *args: Any, **kwargs: Any) -> None:
        return None

    def follow(self, *args: Any, **kwargs: Any) -> None:
        return None

    def in_loop(self) -> bool:
        return False  # workflow threads call back into the dry loop through anyio

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        return None  # e.g. following a child: its outcome is not recorded, so it never comes

    def inbox_changed(self, execution_id: str) -> None:
        return None

    def follow_child(self, parent_id: str, child_execution_id: str) -> None:
        return None  # a child with no recorded outcome: its wait is the end of history

    async def cancel_execution(self, execution_id: str) -> None:
        return None

    def promise_timed_out(self, execution_id: str, name: str) -> None:
        return None

    def submit_log(self, execution_id: str, row: Any) -> None:
        return None

    def observe_event(self, execution_id: str, row: Any) -> None:
        return None

    async def sleep_until(self, when: float) -> None:
        raise EndOfHistory("a retry wait")


class DryRun(Run):
    """A run replayed against its history with nothing executed or recorded."""

    def __init__(
        self,
        definition: WorkflowDefinition[Any],
        history: History,
        input_json: Any,
        execution_id: str,
        registry: Registry,
    ) -> None:
        # The real execution id: it seeds ctx.random() and the step ids, as in the run.
        super().__init__(
            cast(Host, _DryHost(registry)),
            execution_id=execution_id,
            workflow_id=history.workflow_id,
            definition=definition,
            input_json=input_json,
            history=history,
            next_seq=history.last_seq + 1,
            parent_id=None,
        )
        self.scope = logcapture.StepScope(sink=lambda *_: None, muted=lambda: True)
        self.steps = 0

    def _match(self, family: str, index: int, identity: str | None, issued: str) -> Any:
        rec = super()._match(family, index, identity, issued)
        if rec is None:  # a new command: the code has gone past what history recorded
            raise EndOfHistory(None)
        self.steps += 1
        return rec

    def emit(
        self,
        kind: EventType,
        payload: _Payload | None,
        *,
        intents: Iterable[Any] = (),
        status: RunStatus | None = None,
        write: Write | None = None,
    ) -> Write:
        raise EndOfHistory(None)  # anything new to record lies past the history

    def move(self, status: RunStatus) -> None:
        self.status = status

    async def _block(self, wait: Any) -> Any:
        if not wait.done:
            raise EndOfHistory(str(getattr(wait, "label", "")) or None)
        return await wait.result()

    def schedule_async(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: Any = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> StepHandle:
        handle = super().schedule_async(task, input, timeout, retry_policy, queue)
        handle._wait = _Guarded(handle._wait)
        return handle

    def schedule_workflow_async(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any,
        workflow_id: str | None,
        queue: str | None = None,
    ) -> StepHandle:
        handle = super().schedule_workflow_async(workflow, input, workflow_id, queue)
        handle._wait = _Guarded(handle._wait)
        return handle

    async def replay(self) -> DryRunResult:
        """Run the code against the history; never raises for what the code does."""
        definition = self.definition
        history = self.history
        assert history is not None
        try:
            value = serde.from_json(self.input_json, definition.input_type, what="workflow input")
            args: tuple[Any, ...] = (self.ctx, value) if definition.takes_input else (self.ctx,)
            with logcapture.step(self.scope):
                if definition.is_async:
                    await definition.fn(*args)
                else:
                    await offload(lambda: definition.fn(*args), abandon_on_cancel=True)
            history.check_complete("the workflow returned")
        except EndOfHistory as end:
            first = history.first_unmatched()
            if first is not None and end.waits_on is not None:
                # It waits where the recorded run went on: the order of the code changed.
                return self._result(_violation(history, first, f"a wait on {end.waits_on!r}"))
            where = f"waiting on {end.waits_on!r}" if end.waits_on else "a new step"
            return self._result(None, f"end of history (next: {where})")
        except DeterminismViolation as exc:
            return self._result(exc)
        except BaseException as exc:
            if not is_code_failure(exc):
                raise
            if (
                history.ended is not None
                and history.ended.type is EventType.WORKFLOW_EXECUTION_FAILED
            ):
                return self._result(None, f"raised {type(exc).__name__}, as recorded")
            return self._result(exc)
        return self._result(None, "the workflow returned")

    def _result(self, error: BaseException | None, stopped: str = "") -> DryRunResult:
        if error is not None:
            stopped = f"{type(error).__name__}: {error}"
        return DryRunResult(self.workflow_id, error, self.steps, stopped)


def _violation(history: History, first: Any, issued: str) -> DeterminismViolation:
    try:
        history._violation(first.step, describe(first), issued)
    except DeterminismViolation as exc:
        return exc
    raise AssertionError("unreachable")  # pragma: no cover


def dry_replay(
    definition: WorkflowDefinition[Any],
    workflow_id: str,
    execution_id: str,
    input_json: Any,
    events: list[tuple[int, str, dict[str, Any], float]],
    *,
    registry_: Registry = registry,
    timeout: float = 60.0,
) -> DryRunResult:
    """Replay one recorded history against ``definition`` without executing anything.

    Runs on a private loop in a new thread (a notebook cell's thread has a loop running),
    and returns once the code stopped: at the end of history, at its end, or at an error.
    """
    history = History(workflow_id, events)

    async def main() -> DryRunResult:
        run = DryRun(definition, history, input_json, execution_id, registry_)
        with anyio.move_on_after(timeout):
            return await run.replay()
        # code that blocks on something else than a step (time.sleep, I/O)
        return DryRunResult(
            workflow_id,
            TimeoutError(f"the replay did not reach the end of history in {timeout:g} s"),
            run.steps,
            "timed out",
        )

    return run_on_private_loop(main)
