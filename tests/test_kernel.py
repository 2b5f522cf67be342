"""The kernel extension, ``%flovyn``, batch mode and ``wait_all``.

Most tests drive a real ipykernel through jupyter_client (tests/kernel_harness): they load
the extension, run cells and read what the cells showed from the kernel's IOPub messages.
``wait_all``'s rules and the mode detection are also tested in this process, where they
are quicker to pin down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kernel_harness.harness import Cell, Kernel

import flovyn_nb as fn
from flovyn_nb import Runtime, client
from flovyn_nb.errors import EngineError
from flovyn_nb.kernel import mode, waiting
from flovyn_nb.model import RunStatus
from flovyn_nb.testing import wait_until

StartKernel = Callable[..., Kernel]
WIDGET = "application/vnd.jupyter.widget-view+json"

# Cells of the notebook the kernel tests run. The task prints: that text must never show
# up in a cell (it goes to the step's logs).
TASKS = """
import flovyn_nb as fn
from flovyn_nb import WorkflowContext
from flovyn_nb.kernel.waiting import wait_all

@fn.task
def double(x: int) -> int:
    print("PRINTED-BY-TASK")
    return 2 * x
"""
APPROVAL = """
@fn.workflow(name="approval")
async def approval(ctx: WorkflowContext, n: int) -> dict:
    answer = await ctx.promise("go")
    doubled = await ctx.schedule(double, n)
    return {"doubled": doubled, "answer": answer}
"""
REVIEW = """
@fn.workflow(name="review")
def review(ctx, text: str) -> str:
    verdict = ctx.promise("verdict")
    return f"{text}: {verdict}"
"""


@pytest.fixture
def start_kernel(tmp_path: Path) -> Iterator[StartKernel]:
    """Start kernels on one store in tmp_path; each in its own working folder."""
    kernels: list[Kernel] = []

    def start(
        *,
        env: dict[str, str | None] | None = None,
        extra_arguments: list[str] | None = None,
    ) -> Kernel:
        cwd = tmp_path / f"kernel-{len(kernels)}"
        cwd.mkdir()
        settings: dict[str, str | None] = {
            "FLOVYN_NB_STORE": str(tmp_path / "store.duckdb"),
            "FLOVYN_NB_MODE": None,
            **(env or {}),
        }
        kernel = Kernel(cwd, settings, extra_arguments=extra_arguments)
        kernels.append(kernel)
        return kernel.start()

    yield start
    for kernel in kernels:
        kernel.shutdown()


def usage_error(cell: Cell) -> str:
    """The one line a failed magic showed; no traceback."""
    assert cell.status == "error", cell.describe()
    assert cell.error is None, cell.describe()  # a traceback would come as an error message
    lines = cell.stderr.strip().splitlines()
    assert len(lines) == 1, cell.describe()
    assert lines[0].startswith("UsageError: %flovyn"), cell.describe()
    return lines[0]


# -- the extension in a real kernel ---------------------------------------------------------


def test_load_starts_the_engine_on_the_default_store_once(start_kernel: StartKernel) -> None:
    kernel = start_kernel(env={"FLOVYN_NB_STORE": None})
    first = kernel.run("%load_ext flovyn_nb")
    assert first.stdout == "flovyn_nb: engine running on .flovyn/flovyn.duckdb (interactive mode)\n"
    assert (kernel.cwd / ".flovyn" / "flovyn.duckdb").exists()
    again = kernel.run("%load_ext flovyn_nb")
    assert "already loaded" in again.stdout
    engines = kernel.run(
        "import os, flovyn_nb as fn\n"
        "len(fn.sql('select id from engines where pid = ? and not stopped', [os.getpid()]))"
    )
    assert engines.result == "1"


def test_load_reports_an_unusable_store_in_one_line(
    start_kernel: StartKernel, tmp_path: Path
) -> None:
    kernel = start_kernel(env={"FLOVYN_NB_STORE": str(tmp_path)})
    failed = kernel.run("%load_ext flovyn_nb", ok=False)
    assert failed.error is None, failed.describe()
    assert failed.stderr.strip() == (
        f"UsageError: flovyn_nb: cannot start the engine: the store path {tmp_path} is a "
        "folder; name a file"
    )


def test_define_start_resolve_then_restart_resumes_runs_in_any_order(
    start_kernel: StartKernel,
) -> None:
    kernel = start_kernel()
    loaded = kernel.run("%load_ext flovyn_nb")
    assert "store.duckdb (interactive mode)" in loaded.stdout
    cells = [kernel.run(code) for code in (TASKS, APPROVAL, REVIEW)]
    cells.append(kernel.run('h = fn.start_workflow(approval, 3, workflow_id="a-1")\nh'))
    # The handle displays as its panel (display_data, so its static form can be updated).
    assert "a-1" in cells[-1].displays[0]["text/plain"], cells[-1].describe()
    # The task runs (and prints) while this cell blocks: its output must not land here.
    cells.append(kernel.run('fn.resolve_promise("a-1", "go", "yes")\nh.result(timeout=30)'))
    assert cells[-1].result == "{'doubled': 6, 'answer': 'yes'}"

    # Two runs that wait for people, then the kernel restarts under them.
    cells.append(
        kernel.run(
            'fn.start_workflow(approval, 4, workflow_id="a-2")\n'
            'fn.start_workflow(review, "essay", workflow_id="r-1")\n'
            "wait_all(timeout=30)"
        )
    )
    summary = cells[-1].result
    assert "a-2          approval  WAITING    waiting on promise 'go'" in summary, summary
    assert "r-1          review    WAITING    waiting on promise 'verdict'" in summary, summary
    leaks = [cell.describe() for cell in cells if "PRINTED-BY-TASK" in cell.texts]
    assert leaks == []
    logged = kernel.run('[line.message for line in fn.run_logs("a-1")]')
    assert "PRINTED-BY-TASK" in logged.result  # in the step's logs instead

    kernel.restart()
    kernel.run("%load_ext flovyn_nb")
    # The old kernel's engine stopped cleanly at exit and let go of its runs.
    stopped = kernel.run(
        "import flovyn_nb as fn\n"
        "fn.sql('select count(*) as n from engines where stopped').n[0], "
        "fn.sql('select count(*) as n from workflow_executions where owner is not null').n[0]"
    )
    assert stopped.result == "(np.int64(1), np.int64(0))"
    # Definitions in another order than before: review first, then approval.
    kernel.run(TASKS)
    kernel.run(REVIEW)
    kernel.run('fn.resolve_promise("r-1", "verdict", "fine")')
    review_done = kernel.run('fn.get_handle("r-1").result(timeout=30)')
    assert review_done.result == "'essay: fine'"
    kernel.run(APPROVAL)
    resolved = kernel.run('%flovyn resolve a-2 go {"later": true}')
    assert resolved.stdout == "resolved promise 'go' of run 'a-2'\n"
    waited = kernel.run("%flovyn wait --timeout 20")
    assert (
        'a-2          approval  COMPLETED  output: {"answer": {"later": true}, "doubled": 8}'
        in waited.result
    ), waited.result
    assert 'r-1          review    COMPLETED  output: "essay: fine"' in waited.result


def test_reload_ext_stops_the_old_engine_first(start_kernel: StartKernel) -> None:
    kernel = start_kernel()
    kernel.run("%load_ext flovyn_nb")
    for code in (TASKS, APPROVAL, REVIEW):
        kernel.run(code)
    kernel.run(
        'h = fn.start_workflow(approval, 5, workflow_id="a-1")\n'
        'fn.start_workflow(review, "draft", workflow_id="r-1")\n'
        "wait_all(timeout=30)"
    )
    before = kernel.run("fn.current_engine().id").result
    reloaded = kernel.run("%reload_ext flovyn_nb")
    assert reloaded.stdout.startswith("flovyn_nb: engine running on"), reloaded.describe()
    after = kernel.run(
        "import os\n"
        "engine = fn.current_engine()\n"
        "live = fn.sql('select id from engines where pid = ? and not stopped', [os.getpid()])\n"
        "engine.id, list(live.id)"
    )
    new_id = after.result.split(",")[0].strip("( '")
    assert new_id != before.strip("'")
    assert after.result.endswith(f"[{new_id!r}])"), after.result  # exactly one live engine
    # The runs the old engine held (an async and a sync one) go on in the new one.
    kernel.run('fn.resolve_promise("a-1", "go", "after reload")')
    done = kernel.run("h.result(timeout=30)")
    assert done.result == "{'doubled': 10, 'answer': 'after reload'}"
    kernel.run('fn.resolve_promise("r-1", "verdict", "ok")')
    assert kernel.run('fn.get_handle("r-1").result(timeout=30)').result == "'draft: ok'"
    unloaded = kernel.run("%unload_ext flovyn_nb\nfn.current_engine() is None")
    assert unloaded.result == "True"


def test_redefining_a_workflow_with_runs_in_flight_checks_their_replay_in_the_cell(
    start_kernel: StartKernel,
) -> None:
    kernel = start_kernel()
    kernel.run("%load_ext flovyn_nb")
    kernel.run(TASKS)
    kernel.run(APPROVAL)
    kernel.run('h = fn.start_workflow(approval, 1, workflow_id="a-1")')
    kernel.run("wait_all(timeout=30)")
    same = kernel.run(APPROVAL)
    assert same.displays == [] and same.texts.strip() == "", same.describe()
    # A change after the recorded steps replays: the cell says so.
    compatible = kernel.run(APPROVAL.replace('"answer": answer}', '"answer": answer, "v": 2}'))
    [ok] = compatible.displays
    assert ok["text/plain"] == "1 in-flight run(s) of 'approval' replay OK on the new code", ok
    # A change of a recorded step: the cell names the run, the step and both commands.
    changed = kernel.run(APPROVAL.replace('ctx.promise("go")', 'ctx.promise("go-ahead")'))
    [warning] = changed.displays
    lines = warning["text/plain"].splitlines()
    assert lines[0].startswith(
        "1 of 1 in-flight run(s) of 'approval' would not replay on the new code"
    ), warning
    assert "DeterminismViolation" in lines[0]
    assert lines[1] == (
        "  a-1: breaks at step 1: history recorded promise('go'), "
        "the code now issues promise('go-ahead')"
    ), warning
    assert "ctx.patched" in warning["text/plain"]
    assert "DeterminismViolation" in warning["text/html"]
    # The live run keeps the code it started with.
    kernel.run('fn.resolve_promise("a-1", "go", "old code")')
    assert kernel.run("h.result(timeout=30)").result == "{'doubled': 2, 'answer': 'old code'}"
    # With nothing in flight any more, a change is silent.
    quiet = kernel.run(APPROVAL)
    assert quiet.displays == [], quiet.describe()


def test_magics(start_kernel: StartKernel) -> None:
    kernel = start_kernel()
    kernel.run("%load_ext flovyn_nb")
    kernel.run(TASKS)
    kernel.run(APPROVAL)
    help_text = kernel.run("%flovyn").stdout
    assert "%flovyn resolve ID NAME VALUE_JSON" in help_text

    started = kernel.run("%flovyn start approval --input 7 --id m-1")
    assert started.results == [] and len(started.displays) == 1, started.describe()
    assert "m-1" in started.displays[0]["text/plain"]
    kernel.run("%flovyn start approval --input '8' --id m-2")
    kernel.run("%flovyn start approval --input 9 --id m-3")
    kernel.run("wait_all(timeout=30)")

    runs = kernel.run("%flovyn runs --status waiting --kind approval").result
    assert runs.splitlines()[0] == "3 run(s)"
    assert {line.split()[0] for line in runs.splitlines()[3:]} == {"m-1", "m-2", "m-3"}
    shown = kernel.run("%flovyn show m-1").result
    assert shown.startswith("run m-1 (approval): WAITING\npending promise 'go'")
    assert "PROMISE_CREATED" in shown

    panel = kernel.run("%flovyn panel m-1")
    [panel_data] = panel.displays
    assert panel_data["text/plain"].startswith("flovyn run 'm-1' (approval): WAITING")
    assert {"text/html", WIDGET} <= panel_data.keys()
    dashboard = kernel.run("%flovyn dashboard")
    [board] = dashboard.displays
    assert board["text/plain"].startswith("flovyn runs in store.duckdb:"), dashboard.describe()
    assert WIDGET in board

    # JSON with spaces needs no quotes; a quoted reason keeps its spaces.
    resolved = kernel.run('%flovyn resolve m-1 go {"ok": true, "by": "me"}')
    assert resolved.stdout == "resolved promise 'go' of run 'm-1'\n"
    rejected = kernel.run('%flovyn reject m-2 go "too expensive"')
    assert rejected.stdout == "rejected promise 'go' of run 'm-2'\n"
    cancelled = kernel.run("%flovyn cancel m-3")
    assert cancelled.stdout == "cancellation requested for run 'm-3'\n"
    summary = kernel.run("%flovyn wait --timeout 20").result
    assert "m-1          approval  COMPLETED" in summary, summary
    assert (
        "m-2          approval  FAILED     PromiseRejected: promise 'go' was rejected: too expensive"
        in summary
    ), summary
    assert "m-3          approval  CANCELLED" in summary, summary
    frame = kernel.run(
        "df = %flovyn sql select workflow_id, status from workflow_executions order by 1\n"
        "type(df).__name__, list(df.status)"
    )
    assert frame.result == "('DataFrame', ['COMPLETED', 'FAILED', 'CANCELLED'])"

    bad = {
        "%flovyn bogus": "unknown command 'bogus'",
        "%flovyn 'runs": "%flovyn: no closing quotation",
        "%flovyn show": "%flovyn show: missing ID; usage: %flovyn show ID",
        "%flovyn show m-1 extra": "unexpected 'extra'",
        "%flovyn show nope": "%flovyn show: no run with workflow id 'nope'",
        "%flovyn resolve m-1": "missing NAME",
        "%flovyn resolve m-1 go": "missing VALUE_JSON",
        "%flovyn resolve m-1 go {bad": "VALUE_JSON must be JSON",
        "%flovyn resolve m-1 go true": "already resolved",
        "%flovyn reject m-1 go": "missing REASON",
        "%flovyn runs --status NOPE": "unknown status 'NOPE'",
        "%flovyn runs --limit ten": "argument --limit: invalid int value: 'ten'",
        "%flovyn runs --nope": "unrecognized arguments: --nope",
        "%flovyn start": "missing NAME",
        "%flovyn start nope": "no workflow named 'nope'",
        "%flovyn start approval --input {x": "--input must be JSON",
        "%flovyn start approval --input 'oops": "no closing quotation",
        "%flovyn cancel": "missing ID",
        "%flovyn panel nope": "%flovyn panel: no run with workflow id 'nope'",
        "%flovyn sql": "missing QUERY",
        "%flovyn sql selec 1": "bad SQL",
        "%flovyn wait --timeout soon": "invalid float value: 'soon'",
        "%flovyn --mode": "missing batch|interactive",
        "%flovyn --mode sideways": "--mode must be 'batch' or 'interactive', got 'sideways'",
    }
    for line, expected in bad.items():
        message = usage_error(kernel.run(line, ok=False))
        assert expected in message, (line, message)


def test_batch_mode_is_detected_chosen_and_switched(start_kernel: StartKernel) -> None:
    # nbclient (papermill, nbval) starts kernels with an in-memory history.
    batch = start_kernel(extra_arguments=["--HistoryManager.hist_file=:memory:"])
    assert batch.run("%load_ext flovyn_nb").stdout.endswith("(batch mode)\n")
    shown = "from flovyn_nb.kernel import mode\nmode.current_mode()"
    assert batch.run(shown).result == "'batch'"
    dashboard = batch.run("%flovyn dashboard")  # a static summary: no widget in batch mode
    assert set(dashboard.displays[0]) == {"text/plain", "text/html"}, dashboard.describe()
    assert batch.run("%flovyn --mode interactive").stdout == "flovyn_nb: interactive mode\n"
    assert batch.run(shown).result == "'interactive'"
    batch.shutdown()

    chosen = start_kernel(env={"FLOVYN_NB_MODE": "batch"})
    assert chosen.run("%load_ext flovyn_nb").stdout.endswith("(batch mode)\n")
    chosen.shutdown()

    lab = start_kernel(
        env={"JPY_SESSION_NAME": "/lab/Untitled.ipynb"},
        extra_arguments=["--HistoryManager.hist_file=:memory:"],
    )
    assert lab.run("%load_ext flovyn_nb").stdout.endswith("(interactive mode)\n")

    typo = start_kernel(env={"FLOVYN_NB_MODE": "bach"})
    failed = typo.run("%load_ext flovyn_nb", ok=False)
    assert failed.stderr.strip() == (
        "UsageError: flovyn_nb: FLOVYN_NB_MODE must be 'batch' or 'interactive', got 'bach'"
    )
    assert typo.run("import flovyn_nb as fn\nfn.current_engine() is None").result == "True"


def test_await_handle_handles_clicks_while_result_queues_them(start_kernel: StartKernel) -> None:
    """What the flovyn_nb.kernel docstring says about ipykernel 7, checked with a comm
    message standing in for a panel's button click."""
    kernel = start_kernel()
    kernel.run("%load_ext flovyn_nb")
    kernel.run(
        """
        import flovyn_nb as fn
        from comm import get_comm_manager
        from flovyn_nb import client

        @fn.workflow(name="click")
        async def click(ctx) -> str:
            return await ctx.promise("button")

        def on_open(comm, msg):
            @comm.on_msg
            def clicked(msg):
                data = msg["content"]["data"]
                client.resolve_promise_soon(data["id"], "button", data["value"])

        get_comm_manager().register_target("test-clicks", on_open)
        h = fn.start_workflow(click, workflow_id="c-1")
        """
    )
    awaiting = kernel.submit("await h")
    kernel.send_comm("test-clicks", {"id": "c-1", "value": "clicked"})
    assert kernel.collect(awaiting, timeout=20).result == "'clicked'"

    kernel.run('h = fn.start_workflow(click, workflow_id="c-2")')
    blocking = kernel.submit("h.result(timeout=1)")
    kernel.send_comm("test-clicks", {"id": "c-2", "value": "queued"})
    blocked = kernel.collect(blocking, timeout=20)
    assert blocked.error is not None and blocked.error["ename"] == "TimeoutError"
    assert kernel.run("h.result(timeout=30)").result == "'queued'"


# -- batch mode detection and wait_all, in this process --------------------------------------


def test_detect_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOVYN_NB_MODE", raising=False)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    kernel = SimpleNamespace(kernel=object(), history_manager=SimpleNamespace(hist_file="h.db"))
    papermill = SimpleNamespace(
        kernel=object(), history_manager=SimpleNamespace(hist_file=":memory:")
    )
    terminal = SimpleNamespace(kernel=None, history_manager=SimpleNamespace(hist_file="h.db"))
    assert mode.detect_mode(kernel) == "interactive"
    assert mode.detect_mode(papermill) == "batch"
    assert mode.detect_mode(terminal) == "batch"
    monkeypatch.setenv("JPY_SESSION_NAME", "x.ipynb")
    assert mode.detect_mode(papermill) == "interactive"
    monkeypatch.setenv("FLOVYN_NB_MODE", " Batch ")
    assert mode.detect_mode(kernel) == "batch"
    monkeypatch.setenv("FLOVYN_NB_MODE", "later")
    with pytest.raises(ValueError, match="FLOVYN_NB_MODE must be 'batch' or 'interactive'"):
        mode.detect_mode(kernel)


gate = threading.Event()


@fn.task(name="k-blocking")
def blocking_task() -> str:
    gate.wait(30)
    return "unblocked"


@fn.task(
    name="k-flaky",
    retry_policy=fn.RetryPolicy(
        max_attempts=2, initial_interval=timedelta(hours=1), max_interval=timedelta(hours=1)
    ),
)
def flaky_task() -> None:
    raise ValueError("try again in an hour")


@fn.workflow(name="k-done")
async def done_wf(ctx: fn.WorkflowContext) -> int:
    return 1


@fn.workflow(name="k-fail")
async def fail_wf(ctx: fn.WorkflowContext) -> int:
    raise ValueError("boom")


@fn.workflow(name="k-promise")
async def promise_wf(ctx: fn.WorkflowContext) -> Any:
    return await ctx.promise("ok", timeout=3600)


@fn.workflow(name="k-signal")
async def signal_wf(ctx: fn.WorkflowContext) -> Any:
    return await ctx.wait_for_signal("go")


@fn.workflow(name="k-sleep")
async def sleep_wf(ctx: fn.WorkflowContext, seconds: float) -> str:
    await ctx.sleep(seconds)
    return "awake"


@fn.workflow(name="k-parent")
async def parent_wf(ctx: fn.WorkflowContext) -> Any:
    child = ctx.schedule_workflow_async(promise_wf, None, workflow_id="k-child")
    return await child


@fn.workflow(name="k-retry")
async def retry_wf(ctx: fn.WorkflowContext) -> None:
    await ctx.schedule(flaky_task, None)


@fn.workflow(name="k-blocked")
async def blocked_wf(ctx: fn.WorkflowContext) -> str:
    result: str = await ctx.schedule(blocking_task, None)
    return result


def rows(summary: waiting.RunsSummary) -> dict[str, tuple[RunStatus, str]]:
    return {run.workflow_id: (run.status, run.detail) for run in summary.runs}


def test_wait_all_returns_when_every_run_ended_or_waits_for_someone(engine: Runtime) -> None:
    waiting.track()
    for wf, workflow_id, value in [
        (done_wf, "done", None),
        (fail_wf, "fail", None),
        (promise_wf, "promise", None),
        (signal_wf, "signal", None),
        (sleep_wf, "long-sleep", 3600),
        (parent_wf, "parent", None),
        (retry_wf, "retry", None),
    ]:
        fn.start_workflow(wf, value, workflow_id=workflow_id)
    summary = waiting.wait_all(timeout=30)
    assert rows(summary) == {
        "done": (RunStatus.COMPLETED, "output: 1"),
        "fail": (RunStatus.FAILED, "ValueError: boom"),
        "promise": (RunStatus.WAITING, "waiting on promise 'ok'"),
        "signal": (RunStatus.WAITING, "waiting on signal 'go'"),
        "long-sleep": (RunStatus.WAITING, "waiting on timer"),
        "parent": (RunStatus.WAITING, "waiting on child 'k-promise'"),
        "k-child": (RunStatus.WAITING, "waiting on promise 'ok'"),
        "retry": (RunStatus.WAITING, "waiting on task 'k-flaky'"),
    }
    assert not summary.all_completed
    assert len(summary.suspended) == 6 and len(summary.failed) == 1
    text = repr(summary)
    assert text.startswith("flovyn_nb: 8 run(s): 1 completed, 1 failed, 6 suspended\n")
    assert "fn.resolve_promise(ID, NAME, VALUE)" in text
    assert "<td>k-child</td>" in summary._repr_html_()

    fn.resolve_promise("k-child", "ok", "child done")
    fn.signal_workflow("signal", "go", 5)
    after = rows(waiting.wait_all(timeout=30))
    assert after["parent"] == (RunStatus.COMPLETED, 'output: "child done"')
    assert after["signal"] == (RunStatus.COMPLETED, "output: 5")


def test_wait_all_waits_for_a_timer_due_within_the_horizon(engine: Runtime) -> None:
    waiting.track()
    fn.start_workflow(sleep_wf, 0.3, workflow_id="nap")
    assert rows(waiting.wait_all(timeout=0, timer_horizon=0)) == {
        "nap": (RunStatus.WAITING, "waiting on timer")
    }
    assert rows(waiting.wait_all(timeout=30)) == {"nap": (RunStatus.COMPLETED, 'output: "awake"')}


def test_wait_all_waits_for_running_tasks_until_its_timeout(engine: Runtime) -> None:
    waiting.track()
    gate.clear()
    fn.start_workflow(blocked_wf, workflow_id="blocked")
    wait_until(lambda: getattr(client.activity(), "task_attempts", 0))
    with pytest.raises(
        TimeoutError, match=r"runs still busy after 0.2 s: blocked \(waiting on task"
    ):
        waiting.wait_all(timeout=0.2)
    gate.set()
    assert rows(waiting.wait_all(timeout=30)) == {
        "blocked": (RunStatus.COMPLETED, 'output: "unblocked"')
    }


def test_wait_all_needs_an_engine() -> None:
    fn.stop()
    with pytest.raises(EngineError, match="%load_ext flovyn_nb"):
        waiting.wait_all()


def test_wait_all_with_no_runs_says_so(engine: Runtime) -> None:
    waiting.track()
    summary = waiting.wait_all(timeout=30)
    assert summary.runs == [] and summary.all_completed
    assert repr(summary) == "flovyn_nb: 0 run(s)\nno runs were started in this kernel"
