"""Child workflows: ``ctx.schedule_workflow(_async)`` and their outcomes."""

from __future__ import annotations

from typing import Any

from flovyn_nb import serde
from flovyn_nb.context import StepHandle
from flovyn_nb.definitions import Registry, WorkflowDefinition
from flovyn_nb.engine.commands.base import RunBase
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.queues import check_queue_name
from flovyn_nb.engine.waits import Wait
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import ChildWorkflowFailed, InvalidInput, UnknownWorkflowKind
from flovyn_nb.model import (
    ChildWorkflowCompleted,
    ChildWorkflowFailedPayload,
    ChildWorkflowInitiated,
    ErrorInfo,
    EventType,
    RunStatus,
    _Payload,
)
from flovyn_nb.store import NewRun
from flovyn_nb.store.catalog import DEFAULT_QUEUE

E = EventType


class ChildCommands(RunBase):
    """Child workflows: ``ctx.schedule_workflow(_async)`` and their outcomes."""

    # The run's own queue (set by whoever creates or claims the run): its children's default.
    queue: str = DEFAULT_QUEUE

    def schedule_workflow_async(
        self,
        workflow: WorkflowDefinition[Any] | str,
        input: Any,
        workflow_id: str | None,
        queue: str | None = None,
    ) -> StepHandle:
        child_queue = self.queue if queue is None else check_queue_name(queue)
        here = child_queue in self.host.queues
        definition = _definition(self.host.registry, workflow, here)
        index = self._next("child")
        issued = f"schedule_workflow({definition.name!r})"
        rec = self._match("child", index, definition.name, issued)
        wait = Wait(definition.name)
        if rec is None:
            child_execution_id = self.new_step_id()
            child_workflow_id = workflow_id or f"{self.workflow_id}/{definition.name}-{index + 1}"
            input_json = storable(input, what=f"input of child workflow {definition.name!r}")
            self.children.add(child_execution_id)
            self.child_waits[child_execution_id] = wait
            # Recorded now, in the code's order; the child itself is created right after.
            self.emit(
                E.CHILD_WORKFLOW_INITIATED,
                ChildWorkflowInitiated(
                    child_execution_id=child_execution_id,
                    child_workflow_id=child_workflow_id,
                    kind=definition.name,
                    input=input_json,
                    queue=child_queue,
                ),
            )
            self.host.start_soon(
                self._start_child if here else self._queue_child,
                definition,
                child_execution_id,
                child_workflow_id,
                input_json,
                wait,
                child_queue,
            )
            return StepHandle(wait, issued, self)
        self.rng.getrandbits(128)
        child_execution_id = rec.payload["childExecutionId"]
        assert self.history is not None
        outcome = self.history.outcomes.get(child_execution_id)
        if outcome is not None:
            self._settle_child(wait, definition, outcome.type, outcome.payload)
        else:
            self.children.add(child_execution_id)
            self.child_waits[child_execution_id] = wait
            # Executed here, or by another process (a queue this engine does not serve, or
            # taken over): either way its end is delivered once it comes.
            self.host.remote.follow_child(self.execution_id, child_execution_id)
        return StepHandle(wait, issued, self)

    async def _start_child(
        self,
        definition: WorkflowDefinition[Any],
        child_execution_id: str,
        child_workflow_id: str,
        input_json: Any,
        wait: Wait,
        queue: str,
    ) -> None:
        try:
            await self.host.create_run(
                definition,
                input_json,
                workflow_id=child_workflow_id,
                execution_id=child_execution_id,
                parent_id=self.execution_id,
                queue=queue,
            )
        except Exception as exc:
            wait.set_error(exc)

    async def _queue_child(
        self,
        definition: WorkflowDefinition[Any],
        child_execution_id: str,
        child_workflow_id: str,
        input_json: Any,
        wait: Wait,
        queue: str,
    ) -> None:
        """Create the child unowned on a queue this engine does not serve (an engine that
        serves it claims it) and wait for its end."""
        new_run = NewRun(
            child_execution_id,
            child_workflow_id,
            definition.name,
            serde.dumps(input_json),
            definition.source_hash or None,
            None,
            self.execution_id,
            self.host.clock.now(),
            queue,
        )
        try:
            await self.host.writer.commit(Write(new_run=new_run))
        except Exception as exc:
            wait.set_error(exc)
            return
        self.host.remote.follow_child(self.execution_id, child_execution_id)

    def deliver_child(
        self, child_execution_id: str, status: RunStatus, output: Any, error: Any
    ) -> None:
        wait = self.child_waits.pop(child_execution_id, None)
        if wait is None:
            return
        self.children.discard(child_execution_id)
        if status is RunStatus.COMPLETED:
            payload: _Payload = ChildWorkflowCompleted(
                child_execution_id=child_execution_id, output=output
            )
            kind: EventType = E.CHILD_WORKFLOW_COMPLETED
        else:
            info = (
                ErrorInfo.model_validate(error)
                if error
                else ErrorInfo(type="WorkflowCancelled", message="cancelled")
            )
            payload = ChildWorkflowFailedPayload(
                child_execution_id=child_execution_id,
                error=info,
                cancelled=status is RunStatus.CANCELLED,
            )
            kind = E.CHILD_WORKFLOW_FAILED
        self.emit(kind, payload)
        definition = self.host.registry.find_workflow(wait.label)
        self._settle_child(wait, definition, kind, payload.dump())

    def _settle_child(
        self,
        wait: Wait,
        definition: WorkflowDefinition[Any] | None,
        kind: EventType,
        payload: dict[str, Any],
    ) -> None:
        if kind is E.CHILD_WORKFLOW_COMPLETED:
            return_type = definition.return_type if definition else Any
            try:
                wait.set_value(
                    serde.from_json(payload.get("output"), return_type, what="child result")
                )
            except InvalidInput as exc:
                wait.set_error(exc)
            return
        error = payload.get("error") or {}
        child = payload.get("childExecutionId", "")
        wait.set_error(
            ChildWorkflowFailed(
                f"child workflow {wait.label!r} "
                + (
                    "was cancelled"
                    if payload.get("cancelled")
                    else f"failed: {error.get('type')}: {error.get('message')}"
                ),
                child_workflow_id=child,
                cause=error,
            )
        )


def _definition(
    registry: Registry, workflow: WorkflowDefinition[Any] | str, here: bool
) -> WorkflowDefinition[Any]:
    """The child's definition; for a child on a queue this engine does not serve, a name
    this process does not define is fine (its claimer defines it; its result is untyped)."""
    if isinstance(workflow, WorkflowDefinition):
        return workflow
    found = registry.find_workflow(workflow) if isinstance(workflow, str) else None
    if found is not None or here or not isinstance(workflow, str):
        return found or registry.workflow(workflow)
    return WorkflowDefinition(
        name=workflow,
        fn=_defined_elsewhere,
        is_async=True,
        takes_input=True,
        input_type=Any,
        return_type=Any,
        source_hash="",
    )


def _defined_elsewhere(*args: Any) -> Any:
    raise UnknownWorkflowKind(
        "this workflow is defined in the engine that serves its queue", kind="unknown"
    )
