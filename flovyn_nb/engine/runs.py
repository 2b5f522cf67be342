"""The registry of runs: starting them, driving them to their end, parking, forgetting."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from flovyn_nb import serde
from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine.faults import is_code_failure
from flovyn_nb.engine.host import Started
from flovyn_nb.engine.listeners import Listeners
from flovyn_nb.engine.run import Run
from flovyn_nb.engine.threads import offload
from flovyn_nb.engine.writer import Write
from flovyn_nb.errors import DuplicateWorkflowId, InvalidInput
from flovyn_nb.model import RunStatus
from flovyn_nb.store import NewRun, ReleaseRun
from flovyn_nb.store.catalog import DEFAULT_QUEUE


@dataclass(frozen=True)
class LiveRun:
    """A run this engine holds, as seen from its loop (see :meth:`Engine.activity`)."""

    execution_id: str
    workflow_id: str
    kind: str
    computing: bool  # its code runs (or is about to): it will record something by itself
    doing: str  # "running" or "waiting on ..."


@dataclass(frozen=True)
class Activity:
    runs: list[LiveRun]
    task_attempts: int  # task attempts running now
    seen: tuple[str, ...] = ()  # every run this engine started, was handed back or adopted


class RunRegistry(Listeners):
    """The runs this engine holds: created, adopted, driven, parked, finished."""

    async def create_run(
        self,
        definition: WorkflowDefinition[Any],
        input_json: Any,
        workflow_id: str,
        *,
        execution_id: str | None = None,
        parent_id: str | None = None,
        caller: int = 0,
        queue: str = DEFAULT_QUEUE,
    ) -> Started:
        execution_id = execution_id or str(uuid.uuid4())
        now = self.clock.now()
        input_text = serde.dumps(input_json)

        new_run = NewRun(
            execution_id,
            workflow_id,
            definition.name,
            input_text,
            definition.source_hash,
            self.id,
            parent_id,
            now,
            queue,
        )
        try:
            # The run row alone makes the start durable (it holds the input); its
            # WORKFLOW_STARTED event rides along with the run's first steps. Starts that
            # arrive together share one INSERT.
            await self.writer.commit(Write(new_run=new_run, caller=caller))
        except DuplicateWorkflowId:
            # Starting is idempotent: hand back the existing run.
            existing = await offload(self.store.find_run, workflow_id)
            if existing is None:
                raise
            if existing.kind != definition.name:
                raise InvalidInput(
                    f"workflow id {workflow_id!r} is already used by a run of {existing.kind!r}"
                ) from None
            self.seen_runs[existing.id] = None
            return Started(existing.id, workflow_id, existing.kind, existing=True)
        run = Run(
            self,
            execution_id=execution_id,
            workflow_id=workflow_id,
            definition=definition,
            input_json=input_json,
            history=None,
            next_seq=1,
            parent_id=parent_id,
        )
        run.queue = queue
        run.emit_started()
        self._adopt(run)
        return Started(execution_id, workflow_id, definition.name, existing=False)

    def _adopt(self, run: Run) -> None:
        self.seen_runs[run.execution_id] = None
        self.runs[run.execution_id] = run
        self._by_workflow_id[run.workflow_id] = run.execution_id
        self.start_soon(self._drive, run)

    async def _drive(self, run: Run) -> None:
        try:
            await run.execute()
        except BaseException as exc:
            if not is_code_failure(exc):
                raise
            self._internal_error(f"run {run.workflow_id}: {exc!r}")
            try:  # a run left RUNNING would never finish: end it FAILED, saying why
                if await run.fail_on_fault(exc):
                    return
            except Exception as again:
                self._internal_error(f"run {run.workflow_id}: recording its failure: {again!r}")
            self._forget(run.execution_id, run.workflow_id)

    async def park(self, execution_id: str) -> None:
        """Give a replaying run back to the store: its code needs a definition (a task, a
        helper) that this process does not have yet. The next registration retries it."""
        run = self.runs.get(execution_id)
        if run is not None:
            self._forget(execution_id, run.workflow_id)
        self.writer.drop_status(execution_id)  # the row keeps saying how it waited
        await self.writer.commit(
            Write(intents=[ReleaseRun(execution_id, self.id)]),
            wait_if_locked=True,
        )

    def _forget(self, execution_id: str, workflow_id: str) -> None:
        self.runs.pop(execution_id, None)
        if self._by_workflow_id.get(workflow_id) == execution_id:
            del self._by_workflow_id[workflow_id]

    def run_finished(
        self,
        execution_id: str,
        workflow_id: str,
        parent_id: str | None,
        status: RunStatus,
        output: Any,
        error: Any,
    ) -> None:
        self._forget(execution_id, workflow_id)
        if parent_id is not None:
            parent = self.runs.get(parent_id)
            if parent is not None:
                parent.deliver_child(execution_id, status, output, error)
        self._record_end(execution_id, status, output, error)

    async def follow_child(self, parent_id: str, child_execution_id: str) -> None:
        """A replayed parent waits on a child: deliver it if it already ended."""
        with self._finished:  # ended here moments ago: its row may not say so yet
            state = self._final.get(child_execution_id)
        if state is None:
            state = await offload(self.store.run_status, child_execution_id)
        parent = self.runs.get(parent_id)
        if parent is not None and state is not None and state[0].is_terminal:
            parent.deliver_child(child_execution_id, state[0], state[1], state[2])

    async def cancel_execution(self, execution_id: str) -> None:
        run = self.runs.get(execution_id)
        if run is not None:
            await run.request_cancel("parent cancelled")
        else:  # a child another process executes (its queue is not served here)
            await self.remote.cancel_elsewhere(execution_id, "parent cancelled")

    def _live(self, workflow_id: str) -> Run | None:
        execution_id = self._by_workflow_id.get(workflow_id)
        return None if execution_id is None else self.runs.get(execution_id)

    def activity(self) -> Activity:
        """The runs this engine holds and what they do, read on the engine loop (reading
        them from another thread could see them half-changed)."""
        return self.thread.call(self._activity)

    async def _activity(self) -> Activity:
        runs = []
        for run in list(self.runs.values()):
            computing, doing = run.activity()
            runs.append(
                LiveRun(run.execution_id, run.workflow_id, run.definition.name, computing, doing)
            )
        return Activity(runs, self.tasks.attempts_in_progress, tuple(self.seen_runs))
