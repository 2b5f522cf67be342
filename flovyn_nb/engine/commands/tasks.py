"""Tasks: ``ctx.schedule`` and ``ctx.schedule_async`` (the attempts run in ``engine.tasks``)."""

from __future__ import annotations

import uuid
from typing import Any, cast

from flovyn_nb import serde
from flovyn_nb.context import StepHandle
from flovyn_nb.definitions import TaskDefinition
from flovyn_nb.engine.commands.base import RunBase
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.tasks import task_failure
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import InvalidInput, WorkflowCancelled
from flovyn_nb.model import EventType

E = EventType


class TaskCommands(RunBase):
    """Tasks: ``ctx.schedule`` and ``ctx.schedule_async`` (the attempts run in ``engine.tasks``)."""

    def schedule_async(self, task: TaskDefinition[Any] | str, input: Any) -> StepHandle:
        definition = task if isinstance(task, TaskDefinition) else self.host.registry.task(task)
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
            task_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.host.tasks.start(self, definition, task_id, input_json, wait, first_attempt=1)
            return StepHandle(wait, issued, self)
        task_id = rec.payload["taskExecutionId"]
        assert self.history is not None
        outcome = self.history.outcomes.get(task_id)
        self.rng.getrandbits(128)  # keep the random sequence aligned with the first run
        if outcome is None:  # in flight when the process died: run it again
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
            wait.set_error(WorkflowCancelled(workflow_id=self.workflow_id))
        else:
            wait.set_error(task_failure(definition, outcome.payload))
        return StepHandle(wait, issued, self)

    async def schedule(self, task: TaskDefinition[Any] | str, input: Any) -> Any:
        handle = self.schedule_async(task, input)
        return await self._block(cast(Wait, handle._wait))
