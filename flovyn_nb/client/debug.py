"""``fn.step_record``: one recorded step of a run, to inspect and re-run in a cell.

A step is named as ``fn.get_run``, the panels and ``flovyn-nb show`` number them: its
1-based position among the commands the code issued, or its name (the first step of that
name; ``"fetch #2"`` for the second). :meth:`StepRecord.rerun` calls the task function
registered *now* with the recorded input, in the calling thread and unrecorded, so a
breakpoint in the task (``%debug``, ``breakpoint()``, an IDE) stops there.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flovyn_nb import serde
from flovyn_nb.client.reads import reads
from flovyn_nb.context import TaskContext
from flovyn_nb.definitions import TaskDefinition, registry
from flovyn_nb.errors import InvalidInput, UnknownTask
from flovyn_nb.history.events import events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.history.folded import Attempt, Failure, Step, StepKind
from flovyn_nb.model import JSON, LogEntry

__all__ = ["StepRecord", "find_step", "step_record"]


@dataclass(frozen=True)
class StepRecord:
    """What a run recorded about one step (see :func:`step_record`).

    Attributes:
        workflow_id: the run.
        number: the step's 1-based position (as panels and ``flovyn-nb show`` show it).
        name: the task kind, promise name, timer id, child kind or operation name.
        kind: "task", "timer", "promise", "child", "operation", "state" or "signal".
        status: the step's status as recorded (e.g. "COMPLETED", "FAILED", "RUNNING").
        input: the recorded input, typed by the task's input annotation when the task is
            registered in this process (else the JSON value).
        output: the recorded output, typed by the task's return annotation likewise.
        error: the error of the last attempt (type, message, traceback), or None.
        attempts: every attempt, with its status, times and error.
        logs: the log lines the step printed or logged.
        started_at / ended_at: when it was issued and when it ended (None: not yet).
        input_json / output_json: the values as stored.
        cached_from: for a step reused from an earlier run (``@task(cache=True)``), where
            its output was recorded (``{"workflowId": ..., "taskExecutionId": ...}``).
    """

    workflow_id: str
    number: int
    name: str
    kind: str
    status: str
    input: Any
    output: Any
    error: Failure | None
    attempts: tuple[Attempt, ...]
    logs: tuple[LogEntry, ...]
    started_at: datetime
    ended_at: datetime | None
    input_json: JSON = None
    output_json: JSON = None
    cached_from: JSON = None
    task_execution_id: str = field(default="", repr=False)

    @property
    def duration(self) -> float | None:
        """Seconds from issue to end (None while the step is still open)."""
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def rerun(self) -> Any:
        """Call the task function registered now with the recorded input, unrecorded.

        Runs in the calling thread (so the debugger can step through it); nothing is
        written to the store. A task that takes a ``ctx`` gets a stand-in
        :class:`~flovyn_nb.TaskContext` (its logger logs to ``flovyn.rerun.<task>``). An
        ``async def`` task returns its coroutine when called from a running event loop
        (a notebook cell: ``await record.rerun()``) and is run to its end otherwise.

        Raises:
            InvalidInput: the step is not a task step.
            UnknownTask: no task of that name is registered in this process.
            Exception: whatever the task raises.
        """
        if self.kind != StepKind.TASK.value:
            raise InvalidInput(
                f"step {self.number} of run {self.workflow_id!r} is a {self.kind} step "
                f"({self.name!r}); only task steps can be re-run"
            )
        definition = registry.task(self.name)
        value = serde.from_json(self.input_json, definition.input_type, what="task input")
        args: list[Any] = []
        if definition.takes_ctx:
            args.append(_stand_in(self, definition))
        if definition.takes_input:
            args.append(value)
        result = definition.fn(*args)
        if definition.is_async and asyncio.iscoroutine(result):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(result)
        return result


def _stand_in(record: StepRecord, definition: TaskDefinition[Any]) -> TaskContext:
    logger = logging.getLogger(f"flovyn.rerun.{definition.name}")
    return TaskContext(
        task_execution_id=record.task_execution_id,
        task_kind=definition.name,
        attempt=len(record.attempts) + 1,
        workflow_id=record.workflow_id,
        logger=lambda: logger,
        progress=lambda fraction, message: logger.info(
            "%s%s", f"{fraction:.0%}", f" {message}" if message else ""
        ),
    )


def find_step(steps: tuple[Step, ...], step: int | str, workflow_id: str) -> Step:
    """The step numbered ``step`` (1-based) or the first named ``step`` (or ``"name #n"``).

    Raises:
        InvalidInput: no such step (the message says which steps the run has).
    """
    numbered = [s for s in steps if s.number is not None]
    if isinstance(step, bool) or not isinstance(step, int | str):
        raise InvalidInput(f"a step is a number (1-based) or a step name, got {step!r}")
    if isinstance(step, str) and step.strip().isdigit():
        step = int(step)
    if isinstance(step, int):
        for candidate in numbered:
            if candidate.number == step:
                return candidate
        span = f"1..{len(numbered)}" if numbered else "none yet"
        raise InvalidInput(
            f"run {workflow_id!r} has no step {step} (its steps: {span}); "
            "number steps as flovyn-nb show and the panel do"
        )
    for candidate in numbered:
        if step in (candidate.name, candidate.label):
            return candidate
    names = ", ".join(dict.fromkeys(s.label for s in numbered)) or "none yet"
    raise InvalidInput(f"run {workflow_id!r} has no step named {step!r} (its steps: {names})")


def step_record(
    workflow_id: str, step: int | str, *, store: str | os.PathLike[str] | None = None
) -> StepRecord:
    """A recorded step of a run: its input, output (typed), error, attempts, logs, timing.

    Args:
        workflow_id: the run.
        step: its 1-based position (as ``flovyn-nb show`` and the panel number steps) or
            its name (the first step of that name; ``"fetch #2"`` for the second).
        store: the store to read (default: the engine's, or the default store file).

    Raises:
        UnknownWorkflow: no run with that id.
        InvalidInput: the run has no such step.
    """
    client = reads()
    run = client.get_run(workflow_id, store=store)
    folded = fold(events_of(run.events))
    found = find_step(folded.steps, step, run.workflow_id)
    assert found.number is not None
    definition = _registered_task(found.name) if found.kind is StepKind.TASK else None
    logs: tuple[LogEntry, ...] = ()
    if found.kind is StepKind.TASK:
        logs = tuple(
            e for e in client.logs(run.execution_id, store) if e.task_execution_id == found.key
        )
    return StepRecord(
        workflow_id=run.workflow_id,
        number=found.number,
        name=found.name,
        kind=found.kind.value,
        status=found.status.value,
        input=_typed(found.input, None if definition is None else definition.input_type),
        output=_typed(found.value, None if definition is None else definition.return_type),
        error=found.error or _last_error(found.attempts),
        attempts=found.attempts,
        logs=logs,
        started_at=datetime.fromtimestamp(found.start, UTC),
        ended_at=None if found.end is None else datetime.fromtimestamp(found.end, UTC),
        input_json=found.input,
        output_json=found.value,
        cached_from=found.cached_from,
        task_execution_id=found.key if found.kind is StepKind.TASK else "",
    )


def _registered_task(name: str) -> TaskDefinition[Any] | None:
    try:
        return registry.task(name)
    except UnknownTask:  # defined in another process: the values stay JSON
        return None


def _typed(value: JSON, type_hint: Any) -> Any:
    """The value read as its annotated type; the JSON itself when it does not fit (the
    task's annotation may have changed since the run recorded it)."""
    if type_hint is None or value is None:
        return value
    try:
        return serde.from_json(value, type_hint, what="recorded value")
    except Exception:
        return value


def _last_error(attempts: tuple[Attempt, ...]) -> Failure | None:
    for attempt in reversed(attempts):
        if attempt.error is not None:
            return attempt.error
    return None
