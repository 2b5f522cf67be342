"""Run panels and the dashboard without a browser: a recording comm stands in for the
front-end, clicks are comm messages (as ipywidgets' own tests do), a real engine runs."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import comm
import pydantic
import pytest
from comm.base_comm import BaseComm
from ipywidgets.widgets.widget import _instances

import flovyn_nb as fn
from flovyn_nb import Runtime, widgets
from flovyn_nb.model import PromiseStatus
from flovyn_nb.testing import wait_until
from flovyn_nb.widgets.forms import FormError, build_form, collect
from flovyn_nb.widgets.panel import STATIC, WIDGET_MIME, PanelWidget, RunPanel

# -- the recording front-end ---------------------------------------------------------------


@dataclass(frozen=True)
class Sent:
    msg_type: str
    data: Any
    at: float
    thread: str


class RecordingComm(BaseComm):
    """A comm that keeps every message the kernel side sends (what a browser would get)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[Sent] = []
        super().__init__(*args, **kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: Any = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        self.sent.append(Sent(msg_type, data, time.monotonic(), threading.current_thread().name))

    def updates(self) -> list[Sent]:
        """The state updates of the ``data`` trait (one per panel update)."""
        return [
            s
            for s in list(self.sent)
            if s.msg_type == "comm_msg"
            and s.data.get("method") == "update"
            and "data" in s.data.get("state", {})
        ]


@pytest.fixture
def comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[RecordingComm]]:
    made: list[RecordingComm] = []

    def create(*args: Any, **kwargs: Any) -> RecordingComm:
        made.append(RecordingComm(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(comm, "create_comm", create)
    yield made
    for widget in list(_instances.values()):
        if isinstance(widget, PanelWidget):
            widget.close()


@pytest.fixture(autouse=True)
def _interactive_mode(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("FLOVYN_NB_MODE", raising=False)
    widgets.reset_mode()
    yield
    widgets.reset_mode()


def panel_comms(comms: list[RecordingComm]) -> list[RecordingComm]:
    """The comms of panels (each DOM widget also opens one for its Layout)."""
    return [c for c in comms if c.sent[0].data["state"].get("_model_name") == "AnyModel"]


def click(widget: PanelWidget, **content: Any) -> None:
    """What the browser sends when a button is clicked (``model.send(content)``)."""
    assert widget.comm is not None
    widget.comm.handle_msg(
        {"content": {"data": {"method": "custom", "content": content}}, "buffers": []}
    )


def sent_data(widget: PanelWidget) -> dict[str, Any]:
    """The ``data`` the front-end holds now: the open message, then the latest update."""
    assert isinstance(widget.comm, RecordingComm)
    updates = widget.comm.updates()
    if updates:
        return dict(updates[-1].data["state"]["data"])
    [opened] = [s for s in widget.comm.sent if s.msg_type == "comm_open"]
    return dict(opened.data["state"]["data"])


def shown(widget: PanelWidget, condition: Any, message: str) -> dict[str, Any]:
    return wait_until(lambda: (d := sent_data(widget)) and condition(d) and d, message=message)


# -- workflows -----------------------------------------------------------------------------


class Decision(pydantic.BaseModel):
    approved: bool
    amount: int = pydantic.Field(ge=1, description="how many")
    comment: str = ""


@fn.task(name="w-fetch")
def fetch(n: int) -> int:
    print("fetching", n)
    print("careful", file=sys.stderr)
    return n * 2


@fn.workflow(name="w-approval")
async def approval(ctx: fn.WorkflowContext, timeout: float | None = 3600.0) -> str:
    rows = await ctx.schedule(fetch, 21)
    ctx.logger.info("fetched %d rows", rows)
    try:
        decision = await ctx.promise("approval", timeout=timeout, type_hint=Decision)
    except fn.PromiseRejected as exc:
        return f"rejected: {exc.reason}"
    return f"{type(decision).__name__} approved={decision.approved} amount={decision.amount}"


@fn.workflow(name="w-sleeper")
async def sleeper(ctx: fn.WorkflowContext) -> str:
    await ctx.sleep(timedelta(hours=1))
    return "woke"


@fn.task(name="w-chatty")
def chatty(lines: int) -> int:
    for i in range(lines):
        print("line", i)
        time.sleep(0.004)  # a task that takes its time, so updates must be throttled
    return lines


@fn.workflow(name="w-chatty")
async def chatty_wf(ctx: fn.WorkflowContext, lines: int) -> int:
    return await ctx.schedule(chatty, lines)


@fn.workflow(name="w-broken")
async def broken(ctx: fn.WorkflowContext) -> str:
    raise ValueError("the <b>numbers</b> do not add up")


def waiting(workflow_id: str) -> list[fn.PromiseInfo]:
    return wait_until(lambda: fn.pending_promises(workflow_id), message="promise never created")


# -- resolving, rejecting, cancelling from the panel ---------------------------------------


def test_resolve_button_completes_the_run_with_the_typed_value(
    engine: Runtime, comms: list[RecordingComm]
) -> None:
    h = fn.start_workflow(approval, workflow_id="wp-1")
    panel = RunPanel("wp-1")
    data = shown(panel, lambda d: d["promises"], "the promise form never showed")
    [promise] = data["promises"]
    assert promise["name"] == "approval" and promise["typed"] is True
    fields = {f["path"]: f for f in promise["form"]["children"]}
    assert fields["/approved"]["kind"] == "boolean"
    assert fields["/amount"]["kind"] == "integer" and fields["/amount"]["required"]
    assert fields["/amount"]["description"] == "how many"
    assert fields["/comment"]["kind"] == "string" and not fields["/comment"]["required"]

    click(
        panel,
        action="resolve",
        workflow_id="wp-1",
        promise="approval",
        values={"/approved": True, "/amount": "3", "/comment": ""},
    )
    assert h.result(timeout=30) == "Decision approved=True amount=3"
    done = shown(panel, lambda d: d["status"] == "COMPLETED", "panel never showed COMPLETED")
    assert done["promises"] == []
    assert json.loads(done["output"]) == "Decision approved=True amount=3"
    [resolved] = [s for s in done["steps"] if s["kind"] == "promise"]
    assert resolved["status"] == "RESOLVED" and "(by panel)" in resolved["detail"]
    # After creation, only the updater thread wrote the panel's traits.
    assert {u.thread for u in panel.comm.updates()} == {"flovyn-panels"}


def test_bad_value_shows_the_error_and_changes_nothing(
    engine: Runtime, comms: list[RecordingComm]
) -> None:
    h = fn.start_workflow(approval, workflow_id="wp-bad")
    panel = RunPanel("wp-bad")
    waiting("wp-bad")
    shown(panel, lambda d: d["promises"], "the promise form never showed")
    events_before = len(fn.get_run("wp-bad").events)

    # Converts fine, but breaks the type (amount >= 1): the engine refuses it.
    click(panel, action="resolve", workflow_id="wp-bad", promise="approval", values={
        "/approved": True, "/amount": "0"})  # fmt: skip
    data = shown(panel, lambda d: d["promises"][0]["error"], "no validation error shown")
    assert "greater than or equal to 1" in data["promises"][0]["error"]
    assert data["promises"][0]["busy"] is False
    # Does not convert at all: refused before it reaches the engine.
    click(panel, action="resolve", workflow_id="wp-bad", promise="approval", values={
        "/approved": True, "/amount": "many"})  # fmt: skip
    data = shown(
        panel, lambda d: "whole number" in (d["promises"][0]["error"] or ""), "no form error"
    )
    assert data["promises"][0]["error"] == "amount: 'many' is not a whole number"

    [promise] = fn.pending_promises("wp-bad")
    assert promise.status is PromiseStatus.PENDING
    assert len(fn.get_run("wp-bad").events) == events_before
    assert fn.get_run("wp-bad").status is fn.RunStatus.WAITING
    # A good value afterwards clears the error and completes the run.
    click(panel, action="resolve", workflow_id="wp-bad", promise="approval", values={
        "/approved": False, "/amount": "2"})  # fmt: skip
    assert h.result(timeout=30) == "Decision approved=False amount=2"


def test_reject_button(engine: Runtime, comms: list[RecordingComm]) -> None:
    h = fn.start_workflow(approval, workflow_id="wp-rej")
    panel = RunPanel("wp-rej")
    waiting("wp-rej")
    shown(panel, lambda d: d["promises"], "the promise form never showed")
    click(panel, action="reject", workflow_id="wp-rej", promise="approval", reason="too much")
    assert h.result(timeout=30) == "rejected: too much"
    data = shown(panel, lambda d: d["status"] == "COMPLETED", "panel never showed COMPLETED")
    assert [s["status"] for s in data["steps"] if s["kind"] == "promise"] == ["REJECTED"]


def test_cancel_button(engine: Runtime, comms: list[RecordingComm]) -> None:
    h = fn.start_workflow(approval, workflow_id="wp-cancel")
    panel = RunPanel("wp-cancel")
    waiting("wp-cancel")
    click(panel, action="cancel", workflow_id="wp-cancel")
    with pytest.raises(fn.WorkflowCancelled):
        h.result(timeout=30)
    data = shown(panel, lambda d: d["status"] == "CANCELLED", "panel never showed CANCELLED")
    assert data["promises"] == [] and data["cancel_requested"] is True
    assert "CANCELLED" in repr(panel)


# -- live updates --------------------------------------------------------------------------


def test_updates_are_throttled_to_ten_per_second(
    engine: Runtime, comms: list[RecordingComm]
) -> None:
    lines = 300  # ~1.3 s of printing: several hundred listener calls
    h = fn.start_workflow(chatty_wf, lines, workflow_id="wp-chatty")
    panel = RunPanel("wp-chatty")
    assert h.result(timeout=30) == lines
    data = shown(panel, lambda d: d["status"] == "COMPLETED", "panel never showed COMPLETED")
    [task] = data["steps"]
    assert task["logs"]["count"] == lines
    assert task["logs"]["lines"][-1]["m"] == f"line {lines - 1}"

    times = [u.at for u in panel.comm.updates()]
    gaps = [b - a for a, b in itertools_pairwise(times)]
    busiest = max(sum(1 for t in times if start <= t < start + 1.0) for start in times)
    span = times[-1] - times[0]
    print(
        f"{len(times)} updates in {span:.2f} s; busiest second: {busiest}; min gap {min(gaps):.3f} s"
    )
    assert len(times) >= 5, "the panel did not update while the task ran"
    assert busiest <= 10
    assert min(gaps) >= 0.099


def itertools_pairwise(items: list[float]) -> list[tuple[float, float]]:
    return list(itertools.pairwise(items))


def test_logs_per_step_mark_stderr_and_errors(engine: Runtime, comms: list[RecordingComm]) -> None:
    fn.start_workflow(approval, workflow_id="wp-logs")
    panel = RunPanel("wp-logs")
    data = shown(panel, lambda d: d["promises"], "the promise form never showed")
    [task] = [s for s in data["steps"] if s["kind"] == "task"]
    assert task["name"] == "w-fetch" and task["status"] == "COMPLETED" and task["attempts"] == 1
    lines = {(line["s"], line["m"], line["e"]) for line in task["logs"]["lines"]}
    assert lines == {("stdout", "fetching 21", False), ("stderr", "careful", True)}
    assert task["logs"]["errors"] == 1
    assert [line["m"] for line in data["workflow_logs"]["lines"]] == ["fetched 42 rows"]


def test_countdowns_are_deadlines_sent_once(engine: Runtime, comms: list[RecordingComm]) -> None:
    fn.start_workflow(approval, 3600.0, workflow_id="wp-timeout")
    fn.start_workflow(sleeper, workflow_id="wp-sleep")
    promise_panel, timer_panel = RunPanel("wp-timeout"), RunPanel("wp-sleep")
    data = shown(promise_panel, lambda d: d["promises"], "the promise form never showed")
    [info] = waiting("wp-timeout")
    assert info.timeout_at is not None
    assert data["promises"][0]["deadline"] == pytest.approx(info.timeout_at.timestamp() * 1000)
    [row] = [s for s in data["steps"] if s["kind"] == "promise"]
    assert row["deadline"] == data["promises"][0]["deadline"]
    assert row["deadline_label"] == "times out"
    timer = shown(timer_panel, lambda d: d["status"] == "WAITING", "timer never showed")
    [step] = timer["steps"]
    assert step["kind"] == "timer" and step["deadline_label"] == "fires"
    assert step["deadline"] - step["start"] == pytest.approx(3600 * 1000, abs=1)

    # Time passing sends nothing: the browser ticks the countdown from the deadline (and a
    # re-read that finds nothing new, say on a neighbour's bell, sends nothing either).
    before = len(promise_panel.comm.updates()), len(timer_panel.comm.updates())
    time.sleep(1.5)  # observing silence, not waiting for something to happen
    assert (len(promise_panel.comm.updates()), len(timer_panel.comm.updates())) == before
    script = (STATIC / "panel.js").read_text()
    assert "setInterval" in script and "data-deadline" in script


# -- failures --------------------------------------------------------------------------------


def test_failure_shows_the_error_with_its_traceback(
    engine: Runtime, comms: list[RecordingComm]
) -> None:
    h = fn.start_workflow(broken, workflow_id="wp-broken")
    with pytest.raises(fn.WorkflowFailed):
        h.result(timeout=30)
    panel = RunPanel("wp-broken")
    data = sent_data(panel)
    assert data["status"] == "FAILED"
    assert data["error"]["type"] == "ValueError"
    assert "in broken" in data["error"]["traceback"]
    bundle = panel._repr_mimebundle_()
    assert "error: ValueError: the <b>numbers</b> do not add up" in bundle["text/plain"]
    assert "the &lt;b&gt;numbers&lt;/b&gt; do not add up" in bundle["text/html"]
    assert "<b>numbers</b>" not in bundle["text/html"]  # user text is escaped
    assert "in broken" in bundle["text/html"]  # the traceback


# -- what a notebook saves: text/plain, text/html, modes -------------------------------------

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _run_once(store: Path) -> tuple[str, str, str]:
    """The same workflow in a fresh store: (waiting text, completed text, completed html)."""
    with fn.testing.temporary_engine(store=store):
        widgets.set_mode("batch")
        h = fn.start_workflow(approval, 3600.0, workflow_id="wp-same")
        waiting_text = widgets.handle_mimebundle(h)["text/plain"]
        fn.resolve_promise("wp-same", "approval", {"approved": True, "amount": 7})
        h.result(timeout=30)
        bundle = widgets.handle_mimebundle(h)
        return waiting_text, bundle["text/plain"], bundle["text/html"]


def test_text_plain_is_deterministic(tmp_path: Path, comms: list[RecordingComm]) -> None:
    first = _run_once(tmp_path / "a.duckdb")
    second = _run_once(tmp_path / "b.duckdb")
    for text in (first[0], first[1]):
        assert "0x" not in text and not re.search(r"\d\d:\d\d:\d\d(?!Z)", ISO.sub("", text))
    assert ISO.sub("<ISO>", first[0]) == ISO.sub("<ISO>", second[0])
    assert first[1] == second[1]
    assert ISO.sub("<ISO>", first[0]).splitlines() == [
        "flovyn run 'wp-same' (w-approval): WAITING",
        "  task      w-fetch   COMPLETED  attempts=1",
        "  promise   approval  PENDING  times out <ISO>",
        "  waiting for promise 'approval': fn.resolve_promise('wp-same', 'approval', value)",
    ]
    assert first[1].splitlines()[0] == "flovyn run 'wp-same' (w-approval): COMPLETED"
    assert first[1].splitlines()[-1] == '  result: "Decision approved=True amount=7"'
    assert comms == []  # batch mode opens no comm


def test_text_html_is_a_static_summary(engine: Runtime, comms: list[RecordingComm]) -> None:
    h = fn.start_workflow(approval, workflow_id="wp-html")
    waiting("wp-html")
    html = widgets.handle_mimebundle(h)["text/html"]
    assert "<table" in html and "<script" not in html
    for text in ("wp-html", "w-approval", "WAITING", "w-fetch", "COMPLETED", "approval"):
        assert text in html
    assert "[2 log lines, 1 errors]" in html
    assert "fn.resolve_promise(&#x27;wp-html&#x27;, &#x27;approval&#x27;, value)" in html


def test_handle_mimebundle_in_each_mode(
    engine: Runtime, comms: list[RecordingComm], monkeypatch: pytest.MonkeyPatch
) -> None:
    h = fn.start_workflow(approval, workflow_id="wp-modes")
    waiting("wp-modes")
    bundle = h._repr_mimebundle_()
    assert isinstance(bundle, dict)
    assert set(bundle) == {"text/plain", "text/html", WIDGET_MIME}
    [opened] = panel_comms(comms)
    assert bundle[WIDGET_MIME]["model_id"] == opened.comm_id
    assert h._repr_mimebundle_()[WIDGET_MIME] == bundle[WIDGET_MIME]  # one model per run
    assert set(h._repr_mimebundle_(include=["text/plain"])) == {"text/plain"}

    monkeypatch.setenv("FLOVYN_NB_MODE", "batch")
    assert widgets.get_mode() == "batch"
    assert set(h._repr_mimebundle_()) == {"text/plain", "text/html"}
    widgets.set_mode("interactive")  # set_mode wins over the environment
    assert WIDGET_MIME in h._repr_mimebundle_()
    with pytest.raises(fn.InvalidInput, match="unknown display mode"):
        widgets.set_mode("fancy")
    assert len(panel_comms(comms)) == 1


def test_unknown_run_displays_a_message_instead_of_raising(engine: Runtime) -> None:
    handle = fn.WorkflowHandle("nope", "no-such-execution", "w-approval")
    text = widgets.handle_mimebundle(handle)["text/plain"]
    assert "no panel" in text and "nope" in text
    with pytest.raises(fn.UnknownWorkflow):
        RunPanel("nope")


# -- the dashboard ---------------------------------------------------------------------------


def test_dashboard_lists_runs_and_resolves_across_runs(
    engine: Runtime, comms: list[RecordingComm]
) -> None:
    fn.start_workflow(broken, workflow_id="wd-broken").info()
    h = fn.start_workflow(approval, workflow_id="wd-wait")
    waiting("wd-wait")
    board = fn.dashboard()
    data = shown(
        board, lambda d: d["counts"].get("WAITING") and d["counts"].get("FAILED"), "no counts"
    )
    assert {r["workflow_id"]: r["status"] for r in data["runs"]} == {
        "wd-wait": "WAITING",
        "wd-broken": "FAILED",
    }
    assert [(p["workflow_id"], p["name"]) for p in data["promises"]] == [("wd-wait", "approval")]
    assert re.fullmatch(
        r"flovyn runs in flovyn\.duckdb: 1 WAITING, 1 FAILED\n"
        r"  wd-wait    w-approval  WAITING\n  wd-broken  w-broken    FAILED"
        # the schedules of decorated workflows that other test files registered
        r"(\nschedules \(\d+\):(\n  .*)+)?",
        repr(board),
    )
    assert "<table" in board._repr_mimebundle_()["text/html"]

    click(board, action="select", workflow_id="wd-wait")
    data = shown(board, lambda d: d["detail"], "the clicked run never showed")
    assert data["selected"] == "wd-wait" and data["detail"]["status"] == "WAITING"
    assert [p["name"] for p in data["detail"]["promises"]] == ["approval"]

    click(board, action="resolve", workflow_id="wd-wait", promise="approval", values={
        "/approved": True, "/amount": "5"})  # fmt: skip
    assert h.result(timeout=30) == "Decision approved=True amount=5"
    data = shown(
        board,
        lambda d: d["counts"].get("COMPLETED") == 1 and d["detail"]["status"] == "COMPLETED",
        "the dashboard never showed the completion",
    )
    assert data["promises"] == []
    click(board, action="select", workflow_id=None)
    shown(board, lambda d: d["detail"] is None, "the detail never closed")


# -- a run executed by another process -------------------------------------------------------

PROC = Path(__file__).parent / "store_procs" / "proc.py"


@pytest.mark.slow
def test_run_of_another_process_updates_through_the_doorbell(
    store_path: Path, tmp_path: Path, comms: list[RecordingComm]
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "FLOVYN_NB_STORE"}
    log = (tmp_path / "engine.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(PROC), "engine", str(store_path), "--workflow",
         "store-test-approval", "--workflow-id", "wx-1", "--input", '"order"',
         "--wait-status", "WAITING"],
        stdout=subprocess.PIPE, stderr=log, cwd=tmp_path, env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the engine reports when its run waits
            if json.loads(line)["event"] == "status":
                break
        else:
            raise AssertionError((tmp_path / "engine.log").read_text())
        assert fn.current_engine() is None
        panel = RunPanel("wx-1", store=store_path)
        data = sent_data(panel)
        assert data["status"] == "WAITING" and data["promises"][0]["name"] == "approval"
        # Resolved here (no engine: a worker thread writes the store), executed there.
        click(panel, action="resolve", workflow_id="wx-1", promise="approval", values={
            "/approved": True, "/note": "from the panel"})  # fmt: skip
        done = shown(panel, lambda d: d["status"] == "COMPLETED", "no doorbell update")
        output = json.loads(done["output"])
        assert output["note"] == "from the panel" and output["executor_pid"] == proc.pid
        kinds = [(s["kind"], s["status"]) for s in done["steps"]]
        assert kinds == [("promise", "RESOLVED"), ("operation", "COMPLETED")]
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


# -- forms -----------------------------------------------------------------------------------


class Address(pydantic.BaseModel):
    city: str
    zip: int | None = None


class Order(pydantic.BaseModel):
    size: Literal["S", "M", "L"] = "M"
    priority: float
    address: Address
    tags: list[str] = []


def test_forms_from_json_schemas() -> None:
    form = build_form(pydantic.TypeAdapter(Order).json_schema())
    spec = form.spec()
    kinds = {c["path"]: c["kind"] for c in spec["children"]}
    assert kinds == {"/size": "enum", "/priority": "number", "/address": "object", "/tags": "json"}
    size = spec["children"][0]
    assert size["options"] == ["S", "M", "L"] and size["initial"] == "1"
    values = {"/size": "2", "/priority": "1.5", "/address/city": "Oslo", "/address/zip": ""}
    assert collect(form, values) == {"size": "L", "priority": 1.5, "address": {"city": "Oslo"}}
    with pytest.raises(FormError) as err:
        collect(form, {"/priority": "fast", "/tags": "[oops"})
    assert err.value.problems == [
        "priority: 'fast' is not a number",
        'tags: not valid JSON (write text in double quotes, e.g. "yes")',
    ]

    untyped = build_form(None)
    assert untyped.spec()["kind"] == "json"
    assert collect(untyped, {"": '{"a": [1, 2]}'}) == {"a": [1, 2]}
    with pytest.raises(FormError, match="enter a value"):
        collect(untyped, {"": "  "})
    assert collect(build_form({"type": "integer"}), {"": " 42 "}) == 42
    assert collect(build_form({"type": "boolean"}), {"": True}) is True


# -- a real kernel through nbclient (what papermill does) ------------------------------------

NOTEBOOK_CELLS = [
    "%load_ext flovyn_nb",
    """\
import pydantic
import flovyn_nb as fn

class Decision(pydantic.BaseModel):
    approved: bool

@fn.workflow(name="nb-approval")
async def nb_approval(ctx: fn.WorkflowContext) -> str:
    decision = await ctx.promise("approval", type_hint=Decision)
    return f"approved={decision.approved}"
""",
    'h = fn.start_workflow(nb_approval, workflow_id="nb-1")\nh',
    'fn.resolve_promise("nb-1", "approval", {"approved": True})\nh.result(timeout=30)',
    "h",
]


def _execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str | None) -> Any:
    import nbclient
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in NOTEBOOK_CELLS]
    # The kernel inherits the environment: its own store, and the mode (or detection).
    monkeypatch.setenv("FLOVYN_NB_STORE", str(tmp_path / f"{mode}.duckdb"))
    if mode is None:
        monkeypatch.delenv("FLOVYN_NB_MODE", raising=False)
    else:
        monkeypatch.setenv("FLOVYN_NB_MODE", mode)
    nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3").execute(cwd=str(tmp_path))
    return notebook


@pytest.mark.slow
def test_nbclient_saves_the_widget_state_and_the_static_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = _execute(tmp_path, monkeypatch, "interactive")
    [shown_output] = notebook.cells[2].outputs
    assert {"text/plain", "text/html", WIDGET_MIME} <= set(shown_output["data"])
    model_id = shown_output["data"][WIDGET_MIME]["model_id"]
    state = notebook.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    saved = state[model_id]["state"]
    assert saved["_model_name"] == "AnyModel" and "fnb" in saved["_esm"]
    assert saved["data"]["workflow_id"] == "nb-1"
    # nbclient keeps the updates it saw while a cell ran (it drops messages between cells).
    assert saved["data"]["status"] in ("PENDING", "RUNNING", "WAITING", "COMPLETED")

    # Detected batch mode (nbclient's kernel): static views only. The first display was
    # WAITING when its cell ran; it was kept current, so it shows the final state too.
    batch = _execute(tmp_path, monkeypatch, None)
    first, last = batch.cells[2].outputs[0]["data"], batch.cells[4].outputs[0]["data"]
    assert set(first) == set(last) == {"text/plain", "text/html"}
    assert first["text/plain"].splitlines()[0] == "flovyn run 'nb-1' (nb-approval): COMPLETED"
    assert first["text/plain"] == last["text/plain"]
    assert last["text/plain"].splitlines()[-1] == '  result: "approved=True"'
    assert "widgets" not in batch.metadata


def test_dashboard_function_survives_importing_the_widget_modules() -> None:
    import importlib

    for name in ("panel", "board", "updater", "state", "render", "forms", "actions"):
        importlib.import_module(f"flovyn_nb.widgets.{name}")
    assert callable(widgets.dashboard) and widgets.dashboard.__module__ == "flovyn_nb.widgets"
    assert fn.dashboard is widgets.dashboard


# -- a child run opened from its step's name (issue 16) ----------------------------------


@fn.workflow(name="w-parent")
async def parent_wf(ctx: fn.WorkflowContext) -> str:
    return "parent got " + await ctx.schedule_workflow(approval)


def test_clicking_a_child_step_shows_the_childs_own_panel(
    engine: Runtime, comms: list[RecordingComm]
) -> None:
    h = fn.start_workflow(parent_wf, workflow_id="wp-parent")
    panel = RunPanel("wp-parent")
    data = shown(
        panel,
        lambda d: any(s["kind"] == "child" and s.get("child") for s in d["steps"]),
        "the child step never showed",
    )
    assert data["source"] is not None and "schedule_workflow(approval)" in data["source"]
    [child_id] = [s["child"] for s in data["steps"] if s["kind"] == "child"]
    waiting(child_id)
    click(panel, action="select", workflow_id=child_id)
    data = shown(
        panel,
        lambda d: d["child"] and d["child"]["promises"],
        "the child's panel (with its promise form) never showed in the parent's",
    )
    assert data["child"]["workflow_id"] == child_id
    assert "ctx.promise(" in data["child"]["source"]
    # The nested child's buttons act on the child.
    click(
        panel,
        action="resolve",
        workflow_id=child_id,
        promise="approval",
        values={"/approved": True, "/amount": "2", "/comment": ""},
    )
    assert h.result(timeout=30) == "parent got Decision approved=True amount=2"
    shown(panel, lambda d: d["child"]["status"] == "COMPLETED", "the child never showed done")
    click(panel, action="select", workflow_id=None)
    shown(panel, lambda d: d["child"] is None, "the child's panel never closed")
