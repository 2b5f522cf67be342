"""Tasks: ``ctx.schedule`` and ``ctx.schedule_async`` (the attempts run in ``engine.tasks``)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, cast

from flovyn_nb import serde
from flovyn_nb.context import StepHandle
from flovyn_nb.definitions import Registry, RetryPolicy, TaskDefinition
from flovyn_nb.engine.commands.base import RunBase
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.queues import check_queue_name
from flovyn_nb.engine.tasks import task_failure
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import InvalidInput, UnknownTask
from flovyn_nb.model import EventType

E = EventType


class TaskCommands(RunBase):
    """Tasks: ``ctx.schedule`` and ``ctx.schedule_async`` (the attempts run in ``engine.tasks``)."""

    def schedule_async(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> StepHandle:
        # A queue this engine serves runs the task here, as no queue does (Flovyn: a task's
        # default queue is its worker's); another one sends it to the store's task queue.
        remote = queue is not None and check_queue_name(queue) not in self.host.queues
        definition = _definition(self.host.registry, task, remote)
        definition = _overridden(definition, timeout, retry_policy)
        if input is not None and not definition.takes_input:
            # As start_workflow does: refuse before anything is counted or recorded.
            raise InvalidInput(
                f"task {definition.name!r} takes no input, but one was given: "
                f"call ctx.schedule({definition.name}) without an input, "
                f"or give the task an input parameter"
            )
        # Live runs keep the definition they were given; recovered ones use the registry's.
        index = self._next("task")
        issued = f"schedule(task {definition.name!r})"
        rec = self._match("task", index, definition.name, issued)
        wait = Wait(definition.name)
        if rec is None:
            input_json = storable(input, what=f"input of task {definition.name!r}")
            task_id = self.new_step_id()
            if remote:
                assert queue is not None
                self.host.remote.enqueue(self, definition, task_id, input_json, queue, wait)
            else:
                self.host.tasks.start(self, definition, task_id, input_json, wait, first_attempt=1)
            return StepHandle(wait, issued, self)
        task_id = rec.payload["taskExecutionId"]
        assert self.history is not None
        outcome = self.history.outcomes.get(task_id)
        self.rng.getrandbits(128)  # keep the random sequence aligned with the first run
        if outcome is None and rec.payload.get("queue") is not None:
            # Queued for another engine: its claimer may have run it already. Never here.
            self.host.remote.follow(self, definition, task_id, wait)
        elif outcome is None:  # in flight when the process died: run it again
            attempts = self.history.task_attempts.get(task_id, 0)
            self.host.tasks.start(
                self,
                definition,
                task_id,
                rec.payload.get("input"),
                wait,
                first_attempt=attempts + 1,
                recorded=True,
                resume_at=self.history.task_retry_at.get(task_id),
            )
        elif outcome.type is E.TASK_COMPLETED:
            wait.set_value(
                serde.from_json(
                    outcome.payload.get("output"), definition.return_type, what="task result"
                )
            )
        elif outcome.type is E.TASK_CANCELLED:
            wait.set_error(self.cancelled_error())
        else:
            wait.set_error(task_failure(definition, outcome.payload))
        return StepHandle(wait, issued, self)

    async def schedule(
        self,
        task: TaskDefinition[Any] | str,
        input: Any,
        timeout: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        queue: str | None = None,
    ) -> Any:
        handle = self.schedule_async(task, input, timeout, retry_policy, queue)
        return await self._block(cast(Wait, handle._wait))


def _definition(
    registry: Registry, task: TaskDefinition[Any] | str, remote: bool
) -> TaskDefinition[Any]:
    """The task's definition; for a task sent to another engine's queue, a name this
    process does not define is fine (its claimer defines it; its result is untyped)."""
    if isinstance(task, TaskDefinition):
        return task
    try:
        return registry.task(task)
    except UnknownTask:
        if not remote or not isinstance(task, str):
            raise
        return TaskDefinition(
            name=task,
            fn=_defined_elsewhere,
            retry_policy=RetryPolicy(max_attempts=1),
            timeout=None,
            is_async=False,
            takes_ctx=False,
            takes_input=True,
            input_type=Any,
            return_type=Any,
        )


def _defined_elsewhere(*args: Any) -> Any:
    raise UnknownTask("this task is defined in the engine that serves its queue", name="")


def _overridden(
    definition: TaskDefinition[Any],
    timeout: timedelta | float | None,
    retry_policy: RetryPolicy | None,
) -> TaskDefinition[Any]:
    """The definition with this call's overrides (Flovyn's per-call timeout / retry policy)."""
    if timeout is None and retry_policy is None:
        return definition
    if isinstance(timeout, bool) or not isinstance(timeout, timedelta | int | float | None):
        raise InvalidInput(
            f"timeout of ctx.schedule({definition.name}) must be a timedelta or seconds, "
            f"got {type(timeout).__name__}"
        )
    if isinstance(timeout, int | float):
        timeout = timedelta(seconds=timeout)
    if timeout is not None and timeout <= timedelta(0):
        raise InvalidInput(
            f"timeout of ctx.schedule({definition.name}) must be positive, got {timeout}"
        )
    if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
        raise InvalidInput(
            f"retry_policy of ctx.schedule({definition.name}) must be a fn.RetryPolicy, "
            f"got {type(retry_policy).__name__}"
        )
    return dataclasses.replace(
        definition,
        timeout=timeout if timeout is not None else definition.timeout,
        retry_policy=retry_policy if retry_policy is not None else definition.retry_policy,
    )
