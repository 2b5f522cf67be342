"""Task execution: attempts, retries with backoff, timeouts, cancellation.

Before an attempt's side effect starts, everything the run recorded so far is committed
(one group commit carries the previous step's result and this step's start). Retry waits
and attempt timeouts are entries in the engine's deadline queue.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Iterator
from typing import Any

import anyio

from flovyn_nb import serde
from flovyn_nb.context import TaskContext
from flovyn_nb.definitions import TaskDefinition
from flovyn_nb.engine import logcapture
from flovyn_nb.engine.faults import describe, is_code_failure, storable, unstorable
from flovyn_nb.engine.host import Host, TaskOwner
from flovyn_nb.engine.threads import TaskThreads
from flovyn_nb.engine.waits import Wait
from flovyn_nb.errors import (
    InvalidInput,
    TaskFailed,
    TaskTimeout,
    UnstorableValue,
    WorkflowCancelled,
)
from flovyn_nb.model import (
    ErrorInfo,
    EventType,
    TaskCancelled,
    TaskCompleted,
    TaskFailedPayload,
    TaskRetryScheduled,
    TaskScheduled,
    TaskStarted,
)

E = EventType


class _TimedOut(Exception):
    pass


class TaskRunner:
    """Runs the attempts of the tasks runs schedule (implements ``host.TaskStarter``)."""

    def __init__(self, host: Host, *, max_concurrent_tasks: int) -> None:
        self.host = host
        self.limiter = anyio.CapacityLimiter(max_concurrent_tasks)
        self._threads = TaskThreads(max_concurrent_tasks)  # for `def` tasks
        self.running = 0  # tasks started and not finished (including retry waits)
        self.attempts_in_progress = 0

    def close(self) -> None:
        """Let go of the task threads (abandoned calls finish on their own)."""
        self._threads.close()

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        self.attempts_in_progress += 1
        try:
            yield
        finally:
            self.attempts_in_progress -= 1

    def start(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        wait: Wait,
        *,
        first_attempt: int,
        recorded: bool = False,
        resume_at: float | None = None,
    ) -> None:
        if self.host.draining and not recorded:
            # A graceful stop: the step is neither recorded nor started here; the run
            # waits, is handed back, and its next owner schedules the step on replay.
            return
        if not recorded:
            run.emit(
                E.TASK_SCHEDULED,
                TaskScheduled(
                    task_execution_id=task_id,
                    task_kind=definition.name,
                    input=input_json,
                    max_attempts=definition.retry_policy.max_attempts,
                    timeout_seconds=(
                        definition.timeout.total_seconds() if definition.timeout else None
                    ),
                ),
            )
        self.running += 1

        async def execute() -> None:
            try:
                await self._execute(
                    run, definition, task_id, input_json, wait, first_attempt, resume_at
                )
            except BaseException as exc:  # an engine fault: fail the step rather than hang it
                if not is_code_failure(exc):
                    raise
                wait.set_error(exc if isinstance(exc, Exception) else _fault(exc))
                raise

        self.host.start_soon(execute)

    async def _execute(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        wait: Wait,
        attempt: int,
        resume_at: float | None,
    ) -> None:
        policy = definition.retry_policy
        cancelled = False
        with anyio.CancelScope() as scope:

            def cancel() -> None:
                nonlocal cancelled
                cancelled = True
                scope.cancel()

            run.task_cancellers[wait] = cancel
            try:
                if resume_at is not None:
                    await self.host.sleep_until(resume_at)
                while True:
                    ok, value, exc, timed_out = await self._attempt(
                        run, definition, task_id, input_json, attempt
                    )
                    if ok:
                        output = value
                        try:
                            run.emit(
                                E.TASK_COMPLETED,
                                TaskCompleted(
                                    task_execution_id=task_id, attempt=attempt, output=output
                                ),
                            )
                        except Exception as err:  # nothing was recorded (emit is atomic)
                            exc = unstorable(f"result of task {definition.name!r}", err)
                        else:
                            try:
                                wait.set_value(
                                    serde.from_json(
                                        output, definition.return_type, what="task result"
                                    )
                                )
                            except InvalidInput as err:
                                wait.set_error(err)
                            return
                    assert exc is not None
                    info = ErrorInfo(
                        type=type(exc).__name__ if not timed_out else "TaskTimeout",
                        message=describe(exc),
                        traceback=_traceback(exc),
                    )
                    # Bad input stays bad; a result that could not be stored may differ
                    # next time (and the policy asked for attempts).
                    retry = (
                        attempt < policy.max_attempts
                        and policy.is_retryable(exc)
                        and (not isinstance(exc, InvalidInput) or isinstance(exc, UnstorableValue))
                    )
                    if retry:
                        next_at = self.host.clock.now() + policy.delay_after(attempt, self.host.rng)
                        run.emit(
                            E.TASK_RETRY_SCHEDULED,
                            TaskRetryScheduled(
                                task_execution_id=task_id,
                                attempt=attempt,
                                next_attempt_at=_dt(next_at),
                                error=info,
                                timed_out=timed_out,
                            ),
                        )
                        await self.host.sleep_until(next_at)
                        attempt += 1
                        continue
                    payload = TaskFailedPayload(
                        task_execution_id=task_id, attempt=attempt, error=info, timed_out=timed_out
                    )
                    run.emit(E.TASK_FAILED, payload)
                    wait.set_error(task_failure(definition, payload.dump()))
                    return
            finally:
                run.task_cancellers.pop(wait, None)
                self.running -= 1
        if cancelled or scope.cancelled_caught:
            run.emit(E.TASK_CANCELLED, TaskCancelled(task_execution_id=task_id))
            wait.set_error(WorkflowCancelled(workflow_id=run.workflow_id))

    async def _attempt(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        attempt: int,
    ) -> tuple[bool, Any, BaseException | None, bool]:
        """One attempt: (ok, output JSON, error, timed out)."""
        host = self.host
        deadline = (
            host.clock.now() + definition.timeout.total_seconds() if definition.timeout else None
        )
        run.emit(
            E.TASK_STARTED,
            TaskStarted(
                task_execution_id=task_id,
                attempt=attempt,
                deadline=None if deadline is None else _dt(deadline),
            ),
        )
        async with self.limiter:
            with self._active():
                return await self._run_attempt(
                    run, definition, task_id, input_json, attempt, deadline
                )

    async def _run_attempt(
        self,
        run: TaskOwner,
        definition: TaskDefinition[Any],
        task_id: str,
        input_json: Any,
        attempt: int,
        deadline: float | None,
    ) -> tuple[bool, Any, BaseException | None, bool]:
        host = self.host
        # The previous steps' results are durable before this side effect starts.
        await run.outcomes_durable()
        scope = logcapture.StepScope(sink=run.log_sink, task_execution_id=task_id)
        tctx = TaskContext(
            task_execution_id=task_id,
            task_kind=definition.name,
            attempt=attempt,
            workflow_id=run.workflow_id,
            logger=lambda: logcapture.step_logger(f"flovyn.task.{definition.name}", lambda: scope),
            progress=lambda fraction, message: scope.sink(
                task_id,
                "progress",
                "INFO",
                f"{fraction:.0%}" + (f" {message}" if message else ""),
            ),
        )
        timed_out = False
        with anyio.CancelScope() as attempt_scope:

            def on_timeout() -> None:
                nonlocal timed_out
                timed_out = True
                tctx.cancel()
                attempt_scope.cancel()

            entry = host.deadlines.add(deadline, on_timeout) if deadline is not None else None
            try:
                value = serde.from_json(input_json, definition.input_type, what="task input")
                args: list[Any] = [tctx] if definition.takes_ctx else []
                if definition.takes_input:
                    args.append(value)
                with logcapture.step(scope):
                    if definition.is_async:
                        result = await definition.fn(*args)
                    else:
                        context = contextvars.copy_context()
                        call = functools.partial(context.run, definition.fn, *args)
                        try:
                            result = await self._threads.submit(call)
                        except anyio.get_cancelled_exc_class():
                            tctx.cancel()  # the thread runs on; tell it to stop
                            raise
                output = storable(result, what=f"result of task {definition.name!r}")
                return True, output, None, False
            except Exception as exc:
                return False, None, exc, False
            except BaseException as exc:  # KeyboardInterrupt, SystemExit: the attempt failed
                if not is_code_failure(exc):
                    raise
                return False, None, exc, False
            finally:
                if entry is not None:
                    entry.cancel()
        # Only the timeout cancels attempt_scope; outer cancellation propagates past it.
        seconds = definition.timeout.total_seconds() if definition.timeout else 0
        error = _TimedOut(f"attempt {attempt} exceeded the timeout of {seconds:g} s")
        return False, None, error, True


def task_failure(definition: TaskDefinition[Any], payload: dict[str, Any]) -> TaskFailed:
    """The error a workflow sees for a task that failed (from its TASK_FAILED payload)."""
    error = payload.get("error") or {}
    attempts = int(payload.get("attempt", 0))
    cls = TaskTimeout if payload.get("timedOut") else TaskFailed
    what = "timed out" if cls is TaskTimeout else "failed"
    extra: dict[str, Any] = {}
    if cls is TaskTimeout and definition.timeout is not None:
        extra["timeout_ms"] = int(definition.timeout.total_seconds() * 1000)
    return cls(
        f"task {definition.name!r} {what} after {attempts} attempt(s): "
        f"{error.get('type')}: {error.get('message')}",
        task=definition.name,
        attempts=attempts,
        error_type=str(error.get("type", "")),
        error_message=str(error.get("message", "")),
        traceback=str(error.get("traceback", "")),
        **extra,
    )


def _traceback(exc: BaseException) -> str:
    import traceback

    if isinstance(exc, _TimedOut):
        return ""
    try:
        return "".join(traceback.format_exception(exc))
    except Exception:  # an exception whose __str__ fails
        return ""


def _fault(exc: BaseException) -> TaskFailed:
    return TaskFailed(
        f"task failed: {type(exc).__name__}: {describe(exc)}",
        error_type=type(exc).__name__,
        error_message=describe(exc),
    )


def _dt(epoch: float) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC)
