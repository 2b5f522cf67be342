"""Child workflows: ``ctx.schedule_workflow(_async)`` and their outcomes."""

from __future__ import annotations

from typing import Any

from flovyn_nb import serde
from flovyn_nb.context import StepHandle
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine.commands.base import RunBase
from flovyn_nb.engine.faults import storable
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import ChildWorkflowFailed, InvalidInput
from flovyn_nb.model import (
    ChildWorkflowCompleted,
    ChildWorkflowFailedPayload,
    ChildWorkflowInitiated,
    ErrorInfo,
    EventType,
    RunStatus,
    _Payload,
)

E = EventType


class ChildCommands(RunBase):
    """Child workflows: ``ctx.schedule_workflow(_async)`` and their outcomes."""

    def schedule_workflow_async(
        self, workflow: WorkflowDefinition[Any] | str, input: Any, workflow_id: str | None
    ) -> StepHandle:
        definition = (
            workflow
            if isinstance(workflow, WorkflowDefinition)
            else self.host.registry.workflow(workflow)
        )
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
                ),
            )
            self.host.start_soon(
                self._start_child,
                definition,
                child_execution_id,
                child_workflow_id,
                input_json,
                wait,
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
            self.host.start_soon(self.host.follow_child, self.execution_id, child_execution_id)
        return StepHandle(wait, issued, self)

    async def _start_child(
        self,
        definition: WorkflowDefinition[Any],
        child_execution_id: str,
        child_workflow_id: str,
        input_json: Any,
        wait: Wait,
    ) -> None:
        try:
            await self.host.create_run(
                definition,
                input_json,
                workflow_id=child_workflow_id,
                execution_id=child_execution_id,
                parent_id=self.execution_id,
            )
        except Exception as exc:
            wait.set_error(exc)

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
