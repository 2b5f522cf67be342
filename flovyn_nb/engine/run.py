"""One run of a workflow: its commands, their history, and replay.

A live run keeps its coroutine; a run recovered in a new process re-executes its code and
answers each command from the recorded :class:`History` until the code goes past it.
Everything here runs on the engine loop (sync workflows reach it through
``engine.threads``). The commands live in ``engine/commands/``, one module per family;
the run reaches its engine only through :class:`~flovyn_nb.engine.host.Host`.
"""

from __future__ import annotations

from typing import Any

import anyio

from flovyn_nb import serde
from flovyn_nb.context import SyncWorkflowContext, WorkflowContext
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine import logcapture, threads
from flovyn_nb.engine.commands.base import RunBase, error_info
from flovyn_nb.engine.commands.children import ChildCommands
from flovyn_nb.engine.commands.operations import OperationCommands
from flovyn_nb.engine.commands.patches import PatchCommands
from flovyn_nb.engine.commands.promises import PromiseCommands
from flovyn_nb.engine.commands.signals import SignalCommands
from flovyn_nb.engine.commands.tasks import TaskCommands
from flovyn_nb.engine.commands.timers import TimerCommands
from flovyn_nb.engine.faults import is_code_failure, storable, unstorable
from flovyn_nb.engine.host import Host
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import (
    DeterminismViolation,
    UnknownTask,
    UnknownWorkflowKind,
    WorkflowCancelled,
)
from flovyn_nb.history.replay import History
from flovyn_nb.model import (
    CancellationRequested,
    ErrorInfo,
    EventType,
    RunStatus,
    WorkflowCancelledPayload,
    WorkflowCompleted,
    WorkflowExecutionFailed,
    _Payload,
)
from flovyn_nb.store import FlagCancel, RunUpdate

E = EventType


class Run(
    TaskCommands,
    TimerCommands,
    PromiseCommands,
    SignalCommands,
    ChildCommands,
    OperationCommands,
    PatchCommands,
    RunBase,
):
    """The state of one run owned by this engine (implements ``context.RunCommands``)."""

    def __init__(
        self,
        host: Host,
        *,
        execution_id: str,
        workflow_id: str,
        definition: WorkflowDefinition[Any],
        input_json: Any,
        history: History | None,
        next_seq: int,
        parent_id: str | None,
    ) -> None:
        super().__init__(
            host,
            execution_id=execution_id,
            workflow_id=workflow_id,
            definition=definition,
            input_json=input_json,
            history=history,
            next_seq=next_seq,
            parent_id=parent_id,
        )
        self.ctx: WorkflowContext | SyncWorkflowContext = (
            WorkflowContext(self) if definition.is_async else SyncWorkflowContext(self)
        )

    # -- cancellation -------------------------------------------------------------------

    async def request_cancel(self, reason: str = "") -> None:
        if self.cancel_requested:
            return
        self.cancel_requested = True
        self.cancel_reason = reason
        await self.commit(
            E.CANCELLATION_REQUESTED,
            CancellationRequested(reason=reason),
            intents=[FlagCancel(self.execution_id)],
        )
        self.deliver_cancel()

    def deliver_cancel(self) -> None:
        if self.waits:
            self._cancel_delivered = True
        for wait in list(self.waits):
            if wait not in self.task_cancellers:
                wait.set_error(self.cancelled_error())
        for cancel in list(self.task_cancellers.values()):
            cancel()
        for child in list(self.children):
            self.host.start_soon(self.host.cancel_execution, child)

    # -- the workflow itself --------------------------------------------------------------

    async def execute(self) -> None:
        """Run (or replay) the workflow to its end and record how it ended."""
        definition = self.definition
        try:
            value = serde.from_json(self.input_json, definition.input_type, what="workflow input")
            args: tuple[Any, ...] = (self.ctx, value) if definition.takes_input else (self.ctx,)
            with logcapture.step(self.scope):
                if definition.is_async:
                    result = await definition.fn(*args)
                else:
                    result = await threads.offload(
                        lambda: definition.fn(*args),
                        limiter=self.host.workflow_threads,
                        abandon_on_cancel=True,
                    )
            if self.history is not None:
                self.history.check_complete("the workflow returned")
            output = storable(result, what=f"result of workflow {definition.name!r}")
        except anyio.get_cancelled_exc_class():
            raise  # the engine is stopping: the run stays active for the next engine
        except WorkflowCancelled:
            await self._finish(RunStatus.CANCELLED, None, None)
            return
        except BaseException as exc:
            # KeyboardInterrupt, SystemExit and the like are the workflow's failure too:
            # let out, they would stop the engine's loop and every run with it.
            if not is_code_failure(exc):
                raise
            if self.replaying and _missing_definition(exc):
                # The first execution got past this point, so the code is fine: this
                # process has not defined everything yet (cells run in another order
                # after a restart). Wait for the next definition instead of failing.
                self.log_sink(
                    None,
                    "stderr",
                    "WARNING",
                    f"replay paused: {type(exc).__name__}: {exc}; it resumes when the "
                    "missing definition is registered (run the cell that defines it)",
                )
                await self.host.park(self.execution_id)
                return
            await self._finish(RunStatus.FAILED, None, error_info(exc))
            return
        if self.cancel_requested:
            await self._finish(RunStatus.CANCELLED, output, None)
        else:
            await self._finish(RunStatus.COMPLETED, output, None)

    async def _finish(self, status: RunStatus, output: Any, error: ErrorInfo | None) -> None:
        try:
            output_json = None if output is None else serde.dumps(output)
            write = self._end(status, output_json, output, error)
        except Exception as exc:
            if status is RunStatus.FAILED:
                raise
            # The output has no JSON form after all: the run fails, saying so, rather
            # than staying RUNNING for ever.
            failure = error_info(unstorable("result of the workflow", exc))
            status, output = RunStatus.FAILED, None
            error = failure
            write = self._end(status, None, None, error)
        await self.host.writer.wait(write.ticket)
        if write.error is not None:
            raise write.error
        self.host.run_finished(
            self.execution_id,
            self.workflow_id,
            self.parent_id,
            status,
            output,
            None if error is None else error.dump(),
        )

    def _end(
        self, status: RunStatus, output_json: str | None, output: Any, error: ErrorInfo | None
    ) -> Write:
        """Record the terminal event; raises, having changed nothing, if it cannot be encoded."""
        error_json = None if error is None else serde.dumps(error.dump())
        now = self.host.clock.now()
        kind: EventType
        payload: _Payload
        if status is RunStatus.COMPLETED:
            kind, payload = E.WORKFLOW_COMPLETED, WorkflowCompleted(output=output)
        elif status is RunStatus.CANCELLED:
            kind, payload = E.WORKFLOW_CANCELLED, WorkflowCancelledPayload(output=output)
        else:
            assert error is not None
            kind, payload = E.WORKFLOW_EXECUTION_FAILED, WorkflowExecutionFailed(error=error)
        end = RunUpdate(self.execution_id, status, now, output_json, error_json)
        # The terminal event is the record; the run row follows lazily, with other runs'
        # ends in one UPDATE (within STATUS_DELAY; a crash in between is repaired on
        # recovery from the event).
        before = self.end, self.status
        self.end, self.status = end, status
        try:
            write = self.emit(kind, payload)
        except BaseException:
            self.end, self.status = before  # nothing was recorded (emit is atomic)
            raise
        self.host.writer.note_status(self.execution_id, self.row_update)
        return write

    async def fail_on_fault(self, exc: BaseException) -> bool:
        """End the run FAILED after an unexpected error in the engine's handling of it (a
        run left RUNNING would never finish). Returns whether that was recorded."""
        if self.end is not None:
            return False
        await self._finish(RunStatus.FAILED, None, error_info(exc))
        return True


def _missing_definition(exc: BaseException) -> bool:
    """A name, task or child workflow this process has not defined (yet)."""
    return isinstance(exc, NameError | UnknownWorkflowKind | UnknownTask)


__all__ = ["DeterminismViolation", "Run", "error_info"]
