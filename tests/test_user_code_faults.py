"""User code that misbehaves fails its step or run; it never stops the engine.

- ``KeyboardInterrupt`` / ``SystemExit`` raised by a task or a workflow (sync or async) are
  that step's or run's failure, retried per the task's policy, recorded with their type.
- A value with no JSON form (NaN, inf, an object, a cycle) fails the step or run that
  produced it, with an ``UnstorableValue`` naming it; the run always ends.
- If the engine's loop dies anyway, it says so: ``running`` turns False and every call
  raises ``EngineStopped`` naming the cause; a new engine resumes the runs.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio.lowlevel
import pytest
from engine_internals import running_engine

import flovyn_nb as fn
from flovyn_nb import Runtime, client
from flovyn_nb.engine.engine import Engine
from flovyn_nb.errors import EngineStopped, UnstorableValue
from flovyn_nb.model import EventType, RunStatus
from flovyn_nb.testing import temporary_engine, wait_until

NO_RETRY = fn.RetryPolicy(max_attempts=1)


def _abort(kind: str) -> BaseException:
    return KeyboardInterrupt("stop now") if kind == "KeyboardInterrupt" else SystemExit("exit 3")


@fn.task(name="faults-sync-abort", retry_policy=NO_RETRY)
def sync_abort(kind: str) -> int:
    raise _abort(kind)


@fn.task(name="faults-async-abort", retry_policy=NO_RETRY)
async def async_abort(kind: str) -> int:
    await anyio.lowlevel.checkpoint()
    raise _abort(kind)


@fn.workflow(name="faults-calls-task")
async def calls_task(ctx: fn.WorkflowContext, args: list[str]) -> Any:
    task, kind = args
    return await ctx.schedule(task, kind)


@fn.workflow(name="faults-async-wf-abort")
async def async_wf_abort(ctx: fn.WorkflowContext, kind: str) -> int:
    await ctx.sleep(0)
    raise _abort(kind)


@fn.workflow(name="faults-sync-wf-abort")
def sync_wf_abort(ctx: fn.SyncWorkflowContext, kind: str) -> int:
    ctx.sleep(0)
    raise _abort(kind)


@fn.workflow(name="faults-ok")
async def ok(ctx: fn.WorkflowContext) -> str:
    return "still here"


def _engine_still_works(engine: Runtime) -> None:
    assert engine.running
    assert fn.start_workflow(ok).result(timeout=30) == "still here"


def _failed(workflow_id: str) -> fn.RunInfo:
    run = fn.get_run(workflow_id)
    assert run.status is RunStatus.FAILED
    assert run.error is not None
    return run


@pytest.mark.parametrize("kind", ["KeyboardInterrupt", "SystemExit"])
@pytest.mark.parametrize("task", ["faults-sync-abort", "faults-async-abort"])
def test_task_raising_interrupt_or_exit_fails_the_step(
    engine: Runtime, task: str, kind: str
) -> None:
    h = fn.start_workflow(calls_task, [task, kind], workflow_id=f"t-{task}-{kind}")
    with pytest.raises(fn.WorkflowFailed, match=kind):
        h.result(timeout=30)
    failed = [e for e in fn.get_run(h.workflow_id).events if e.type is EventType.TASK_FAILED]
    assert len(failed) == 1
    assert failed[0].payload["error"]["type"] == kind
    assert failed[0].payload["error"]["message"] in {"stop now", "exit 3"}
    assert _failed(h.workflow_id).error.message.startswith(f"task {task!r} failed")  # type: ignore[union-attr]
    _engine_still_works(engine)


@pytest.mark.parametrize("kind", ["KeyboardInterrupt", "SystemExit"])
@pytest.mark.parametrize("workflow", [async_wf_abort, sync_wf_abort], ids=["async", "sync"])
def test_workflow_raising_interrupt_or_exit_fails_the_run(
    engine: Runtime, workflow: Any, kind: str
) -> None:
    h = fn.start_workflow(workflow, kind, workflow_id=f"w-{kind}")
    with pytest.raises(fn.WorkflowFailed, match=kind):
        h.result(timeout=30)
    error = _failed(h.workflow_id).error
    assert error is not None and error.type == kind
    _engine_still_works(engine)


tries: dict[str, int] = {}


@fn.task(
    name="faults-abort-retried",
    retry_policy=fn.RetryPolicy(max_attempts=3, initial_interval=timedelta(seconds=5), jitter=0),
)
def abort_retried(key: str) -> str:
    tries[key] = tries.get(key, 0) + 1
    if tries[key] < 3:
        raise KeyboardInterrupt(f"attempt {tries[key]}")
    return "third time"


@fn.task(
    name="faults-exit-not-retried",
    retry_policy=fn.RetryPolicy(max_attempts=3, non_retryable_errors=(SystemExit,)),
)
async def exit_not_retried(key: str) -> str:
    tries[key] = tries.get(key, 0) + 1
    raise SystemExit("no point trying again")


def test_interrupt_is_retried_per_policy(fake_engine: Runtime) -> None:
    tries.clear()
    h = fn.start_workflow(calls_task, ["faults-abort-retried", "a"], workflow_id="retried")
    assert h.result(timeout=30) == "third time"
    events = fn.get_run("retried").events
    retries = [e.payload for e in events if e.type is EventType.TASK_RETRY_SCHEDULED]
    assert [(r["attempt"], r["error"]["type"]) for r in retries] == [
        (1, "KeyboardInterrupt"),
        (2, "KeyboardInterrupt"),
    ]
    _engine_still_works(fake_engine)


def test_non_retryable_exit_fails_at_once(fake_engine: Runtime) -> None:
    tries.clear()
    h = fn.start_workflow(calls_task, ["faults-exit-not-retried", "b"], workflow_id="no-retry")
    with pytest.raises(fn.WorkflowFailed, match="after 1 attempt"):
        h.result(timeout=30)
    assert tries == {"b": 1}
    _engine_still_works(fake_engine)


# -- a recovered run --------------------------------------------------------------------------

release = threading.Event()
recovered_mode: dict[str, str] = {}


@fn.task(name="faults-blocks-then-aborts", retry_policy=NO_RETRY)
def blocks_then_aborts(kind: str) -> str:
    if not recovered_mode:  # the first engine: block until it is gone
        release.wait(30)
        return "first engine"
    raise _abort(kind)


@fn.workflow(name="faults-recovered")
async def recovered(ctx: fn.WorkflowContext, kind: str) -> str:
    value: str = await ctx.schedule(blocks_then_aborts, kind)
    return value


@fn.workflow(name="faults-recovered-wf")
async def recovered_wf(ctx: fn.WorkflowContext, kind: str) -> str:
    await ctx.promise("go")
    raise _abort(kind)


@pytest.mark.parametrize("kind", ["KeyboardInterrupt", "SystemExit"])
def test_recovered_run_raising_does_not_kill_the_next_engine(store_path: Path, kind: str) -> None:
    release.clear()
    recovered_mode.clear()
    with temporary_engine(store=store_path):
        fn.start_workflow(recovered, kind, workflow_id="rec-task")
        fn.start_workflow(recovered_wf, kind, workflow_id="rec-wf")
        wait_until(lambda: fn.pending_promises())
        wait_until(
            lambda: any(e.type is EventType.TASK_STARTED for e in fn.get_run("rec-task").events)
        )
    release.set()  # the first engine's abandoned attempt ends; its result is not recorded
    recovered_mode["on"] = "yes"
    with temporary_engine(store=store_path) as engine:
        with pytest.raises(fn.WorkflowFailed, match=kind):
            fn.get_handle("rec-task").result(timeout=30)
        fn.resolve_promise("rec-wf", "go", None)
        with pytest.raises(fn.WorkflowFailed, match=kind):
            fn.get_handle("rec-wf").result(timeout=30)
        _engine_still_works(engine)
        assert engine.errors == []


# -- values with no JSON form ---------------------------------------------------------------


class NoJson:
    pass


def _circular() -> list[Any]:
    items: list[Any] = [1]
    items.append(items)
    return items


BAD_VALUES = {
    "nan": lambda: float("nan"),
    "inf": lambda: float("inf"),
    "object": NoJson,
    "circular": _circular,
    "nested-nan": lambda: {"scores": [1.0, float("-inf")]},
}

bad_tries: dict[str, int] = {}


@fn.task(
    name="faults-bad-result",
    retry_policy=fn.RetryPolicy(max_attempts=2, initial_interval=timedelta(seconds=1), jitter=0),
)
def bad_result(which: str) -> Any:
    bad_tries[which] = bad_tries.get(which, 0) + 1
    return BAD_VALUES[which]()


@fn.workflow(name="faults-bad-task-result")
async def bad_task_result(ctx: fn.WorkflowContext, which: str) -> Any:
    return await ctx.schedule(bad_result, which)


@fn.workflow(name="faults-bad-wf-result")
async def bad_wf_result(ctx: fn.WorkflowContext, which: str) -> Any:
    return BAD_VALUES[which]()


@fn.workflow(name="faults-bad-sync-wf-result")
def bad_sync_wf_result(ctx: fn.SyncWorkflowContext, which: str) -> Any:
    return BAD_VALUES[which]()


@pytest.mark.parametrize("which", list(BAD_VALUES))
def test_unstorable_task_result_is_retried_then_fails(fake_engine: Runtime, which: str) -> None:
    bad_tries.clear()
    h = fn.start_workflow(bad_task_result, which, workflow_id=f"task-{which}")
    with pytest.raises(fn.WorkflowFailed, match="cannot be stored as JSON"):
        h.result(timeout=30)
    assert bad_tries == {which: 2}  # the policy's two attempts
    events = fn.get_run(h.workflow_id).events
    assert not [e for e in events if e.type is EventType.TASK_COMPLETED]  # no null recorded
    failed = [e.payload for e in events if e.type is EventType.TASK_FAILED]
    assert failed[0]["error"]["type"] == "UnstorableValue"
    assert "result of task 'faults-bad-result'" in failed[0]["error"]["message"]
    assert _failed(h.workflow_id).output is None
    _engine_still_works(fake_engine)


@pytest.mark.parametrize("which", list(BAD_VALUES))
@pytest.mark.parametrize("workflow", [bad_wf_result, bad_sync_wf_result], ids=["async", "sync"])
def test_unstorable_workflow_result_fails_the_run(
    fake_engine: Runtime, workflow: Any, which: str
) -> None:
    h = fn.start_workflow(workflow, which, workflow_id=f"wf-{which}")
    with pytest.raises(fn.WorkflowFailed, match="cannot be stored as JSON"):
        h.result(timeout=30)
    run = _failed(h.workflow_id)
    assert run.error is not None and run.error.type == "UnstorableValue"
    assert "result of workflow" in run.error.message
    _engine_still_works(fake_engine)


@fn.workflow(name="faults-bad-state")
async def bad_state(ctx: fn.WorkflowContext, catch: bool) -> Any:
    try:
        await ctx.set("score", float("nan"))
    except UnstorableValue as exc:
        if not catch:
            raise
        await ctx.set("score", 0.0)
        return [str(exc), await ctx.get("score")]
    return "not reached"


@fn.workflow(name="faults-bad-operation")
async def bad_operation(ctx: fn.WorkflowContext) -> Any:
    return await ctx.run("measure", lambda: float("inf"))


def test_unstorable_state_value_is_refused_in_the_workflow(fake_engine: Runtime) -> None:
    caught = fn.start_workflow(bad_state, True, workflow_id="state-caught").result(timeout=30)
    message, score = caught
    assert "value of state 'score' (ctx.set) cannot be stored as JSON" in message
    assert score == 0.0
    h = fn.start_workflow(bad_state, False, workflow_id="state-uncaught")
    with pytest.raises(fn.WorkflowFailed, match="value of state 'score'"):
        h.result(timeout=30)
    h = fn.start_workflow(bad_operation, workflow_id="operation")
    with pytest.raises(fn.WorkflowFailed, match=r"result of ctx.run\('measure'\)"):
        h.result(timeout=30)


# -- a loop that dies anyway ------------------------------------------------------------------


@fn.workflow(name="faults-waits")
async def waits(ctx: fn.WorkflowContext) -> int:
    value: int = await ctx.promise("value")
    return value


def _die(cause: BaseException) -> None:
    raise cause


async def _broken_service() -> None:
    raise RuntimeError("a service broke")


@pytest.mark.parametrize("how", ["loop-exit", "service-error"])
def test_dead_loop_is_reported_and_every_call_says_so(store_path: Path, how: str) -> None:
    with temporary_engine(store=store_path) as runtime:
        h = fn.start_workflow(waits, workflow_id="survivor")
        wait_until(lambda: fn.pending_promises())
        engine = running_engine()  # the loop itself: faults are injected into it
        # The change feed's thread looks for the engine meanwhile: it must not die of it.
        feed = client.watch(lambda change: None)
        loop = engine.thread.loop
        assert loop is not None
        serving = threading.Event()

        async def hold() -> None:
            serving.set()
            await anyio.sleep_forever()

        in_flight = engine.thread.soon(hold)  # a call the loop is serving
        assert serving.wait(30)
        # An internal fault, injected: a SystemExit out of a loop callback stops the loop
        # itself; an error in one of the engine's services ends its task group.
        if how == "loop-exit":
            loop.call_soon_threadsafe(_die, SystemExit("injected"))
            cause = "SystemExit: injected"
        else:
            loop.call_soon_threadsafe(lambda: engine._tg.start_soon(_broken_service))
            cause = "RuntimeError: a service broke"
        wait_until(lambda: not runtime.running, message="the engine still says it runs")
        assert engine.failure is not None and engine.failure.cause == cause
        assert len(engine.errors) == 1 and cause.split(":")[0] in engine.errors[0]
        with pytest.raises(EngineStopped, match=cause):
            in_flight.result(timeout=30)
        calls = {
            "start_workflow": lambda: fn.start_workflow(ok),
            "get_run": lambda: fn.get_run("survivor"),
            "list_runs": lambda: fn.list_runs(),
            "resolve_promise": lambda: fn.resolve_promise("survivor", "value", 1),
            "result": lambda: h.result(timeout=30),
            "engine.start_workflow": lambda: engine.start_workflow(ok, None),
            "engine.activity": lambda: engine.activity(),
        }
        for name, call in calls.items():
            with pytest.raises(EngineStopped, match=f"stopped unexpectedly \\({cause}\\)") as err:
                call()
            assert "flovyn_nb.start()" in str(err.value), name
        feed.close()
    # A new engine resumes the run.
    with temporary_engine(store=store_path) as engine:
        fn.resolve_promise("survivor", "value", 42)
        assert fn.get_handle("survivor").result(timeout=30) == 42
        assert engine.errors == []


@fn.workflow(name="faults-waits-signal")
async def waits_signal(ctx: fn.WorkflowContext) -> Any:
    return await ctx.wait_for_signal("go")


@pytest.mark.parametrize("which", ["nan", "circular"])
def test_unstorable_promise_or_signal_value_is_refused_to_the_caller(
    engine: Runtime, which: str
) -> None:
    h = fn.start_workflow(waits, workflow_id=f"promise-{which}")
    wait_until(lambda: fn.pending_promises())
    with pytest.raises(fn.InvalidInput, match="value for promise 'value'"):
        fn.resolve_promise(h.workflow_id, "value", BAD_VALUES[which]())
    fn.resolve_promise(h.workflow_id, "value", 7)  # nothing was stored: it still waits
    assert h.result(timeout=30) == 7
    s = fn.start_workflow(waits_signal, workflow_id=f"signal-{which}")
    with pytest.raises(fn.InvalidInput, match="value of signal 'go'"):
        fn.signal_workflow(s.workflow_id, "go", BAD_VALUES[which]())
    fn.signal_workflow(s.workflow_id, "go", "now")
    assert s.result(timeout=30) == "now"


def test_a_failing_service_restarts_instead_of_ending_the_loop(
    store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures: list[int] = []
    original = Engine._inbox_loop

    async def flaky_inbox(self: Engine) -> None:
        if not failures:  # an internal fault, injected: the first start fails
            failures.append(1)
            raise RuntimeError("inbox broke")
        await original(self)

    monkeypatch.setattr(Engine, "_inbox_loop", flaky_inbox)
    with temporary_engine(store=store_path) as engine:
        wait_until(lambda: engine.errors, message="the fault was not recorded")
        assert "inbox broke" in engine.errors[0] and "restarts" in engine.errors[0]
        h = fn.start_workflow(waits, workflow_id="after-restart")
        wait_until(lambda: fn.pending_promises())
        fn.resolve_promise("after-restart", "value", 5)
        assert h.result(timeout=30) == 5
        assert engine.running and len(engine.errors) == 1


@fn.workflow(name="faults-takes-anything")
async def takes_anything(ctx: fn.WorkflowContext, value: Any) -> Any:
    return value


@pytest.mark.parametrize("which", ["nan", "circular"])
def test_unstorable_workflow_input_is_refused_and_nothing_stored(
    engine: Runtime, which: str
) -> None:
    with pytest.raises(fn.InvalidInput, match="input of workflow 'faults-takes-anything'"):
        fn.start_workflow(takes_anything, BAD_VALUES[which](), workflow_id=f"in-{which}")
    assert fn.list_runs() == []
