"""Durable streams: ``ctx.stream_token/progress/data/error`` stored per step, in order,
read back by the client, printed by ``flovyn-nb logs --follow`` and kept by panels."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import flovyn_nb as fn
from flovyn_nb import Runtime, client
from flovyn_nb.testing import temporary_engine, wait_until
from flovyn_nb.widgets.render import run_html, run_json
from flovyn_nb.widgets.state import Line, LogBook, RunState

calls: dict[str, int] = {}
gate = threading.Event()  # a step that streams, then waits for the test to let it finish


@fn.task(name="st-llm")
async def llm(ctx: fn.TaskContext, words: list[str]) -> str:
    calls["llm"] = calls.get("llm", 0) + 1
    for word in words:
        assert await ctx.stream_token(word) is True  # Flovyn's acknowledgement
    await ctx.stream_progress(0.5, "half way")
    await ctx.stream_data({"row": 1, "score": 0.9})
    await ctx.stream_error("rate limited", code="429")
    await ctx.stream("token", "!")  # Flovyn's generic form
    return "".join(words)


@fn.task(name="st-sync")
def sync_stream(ctx: fn.TaskContext, n: int) -> int:
    for _ in range(n):
        ctx.stream_token("a")  # a def task calls them plainly
    ctx.stream_progress(1.0)
    return n


@fn.workflow(name="st-wf")
async def streaming(ctx: fn.WorkflowContext, words: list[str]) -> str:
    text = await ctx.schedule(llm, words)
    n = await ctx.schedule(sync_stream, 3)
    await ctx.promise("go")
    return f"{text}/{n}"


WORDS = ["The", " cat", " sat", " the", " the"]  # repeated tokens must all be kept


def _expected() -> list[tuple[str, dict[str, object]]]:
    return [
        *[("token", {"text": w}) for w in WORDS],
        ("progress", {"progress": 0.5, "details": "half way"}),
        ("data", {"data": {"row": 1, "score": 0.9}}),
        ("error", {"message": "rate limited", "code": "429"}),
        ("token", {"text": "!"}),
        *[("token", {"text": "a"})] * 3,
        ("progress", {"progress": 1.0, "details": None}),
    ]


def test_stream_items_are_stored_in_order_and_a_replay_does_not_repeat_them(
    store_path: Path,
) -> None:
    calls.clear()
    with temporary_engine(store=store_path):
        fn.start_workflow(streaming, WORDS, workflow_id="st-1")
        wait_until(lambda: fn.pending_promises("st-1"), timeout=30)
        items = fn.client.run_streams("st-1")
        assert [(i.kind, i.payload) for i in items] == _expected()
        assert len({i.task_execution_id for i in items}) == 2  # per step
        assert [(i.kind, i.payload) for i in fn.client.run_streams("st-1", since=9)] == (
            _expected()[9:]
        )
    # A new engine replays the run: the completed steps are answered from history.
    with temporary_engine(store=store_path):
        fn.resolve_promise("st-1", "go")
        assert fn.get_handle("st-1").result(timeout=30) == "The cat sat the the/3"
        assert calls["llm"] == 1
        assert [(i.kind, i.payload) for i in fn.client.run_streams("st-1")] == _expected()


def test_a_value_that_is_not_json_is_refused_with_one_clear_error() -> None:
    from flovyn_nb.context import TaskContext

    sent: list[tuple[str, str]] = []
    ctx = TaskContext(
        task_execution_id="t",
        task_kind="k",
        attempt=1,
        workflow_id="w",
        logger=lambda: __import__("logging").getLogger("t"),
        progress=lambda fraction, message: None,
        stream=lambda kind, payload: sent.append((kind, payload)),
    )
    with pytest.raises(fn.InvalidInput, match=r"stream_data\(\)"):
        ctx.stream_data(object())
    with pytest.raises(fn.InvalidInput, match="unknown stream event type 'tok'"):
        ctx.stream("tok", "x")
    assert sent == []


def test_logs_follow_prints_the_tokens_of_a_running_step_from_another_process(
    engine: Runtime, store_path: Path
) -> None:
    gate.clear()

    @fn.task(name="st-gated")
    def gated(ctx: fn.TaskContext) -> str:
        for word in ("Once", " upon", " a", " time"):
            ctx.stream_token(word)
        ctx.stream_progress(0.25, "thinking")
        ctx.stream_data({"k": "v"})
        gate.wait(60)
        ctx.stream_token(" END")
        return "ok"

    @fn.workflow(name="st-gated-wf")
    async def gated_wf(ctx: fn.WorkflowContext) -> str:
        result: str = await ctx.schedule(gated)
        return result

    handle = fn.start_workflow(gated_wf, workflow_id="st-follow")
    wait_until(lambda: len(fn.client.run_streams("st-follow")) == 6, timeout=30)
    command = [sys.executable, "-m", "flovyn_nb.cli", "logs", "st-follow", "--follow"]
    with subprocess.Popen(
        [*command, "--store", str(store_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        stdout = proc.stdout
        out: list[str] = []
        reader = threading.Thread(target=lambda: out.extend(iter(lambda: stdout.read(1), "")))
        reader.start()
        try:
            # Shown while the step still runs: the run cannot end before the gate opens.
            wait_until(lambda: "Once upon a time" in "".join(out), timeout=60)
        finally:
            gate.set()
        assert handle.result(timeout=30) == "ok"
        assert proc.wait(timeout=60) == 0, proc.stderr.read()
        reader.join(timeout=10)
    text = "".join(out)
    lines = text.splitlines()
    assert any(line.endswith("token    Once upon a time") for line in lines), text
    assert any(line.endswith("progress 25% thinking") for line in lines), text
    assert any(line.endswith('data     {"k": "v"}') for line in lines), text
    assert any(line.endswith("token     END") for line in lines), text


def test_a_panel_keeps_text_progress_and_rows_of_each_step(engine: Runtime) -> None:
    calls.clear()
    fn.start_workflow(streaming, WORDS, workflow_id="st-panel")
    wait_until(lambda: fn.pending_promises("st-panel"), timeout=30)
    state = RunState("st-panel", Path(client.store_location()))
    state.refresh(bell=False)
    state.mark_reload()
    state.refresh(bell=True)  # a second, overlapping read must not double anything
    assert state.view is not None
    data = run_json(state.view, state.logs, {}, None, now=0.0)
    first, second = (s["streams"] for s in data["steps"] if s["kind"] == "task")
    assert first["text"] == "The cat sat the the!"
    assert first["progress"] == 0.5 and first["details"] == "half way"
    assert first["rows"] == ['{"row": 1, "score": 0.9}']
    assert first["errors"] == [{"message": "rate limited", "code": "429"}]
    assert second["text"] == "aaa" and second["progress"] == 1.0
    # Stream items are not log lines.
    assert all(s["logs"]["count"] == 0 for s in data["steps"] if s["kind"] == "task")
    html = run_html(state.view, state.logs)
    assert "The cat sat the the!" in html and '<progress max="100" value="50">' in html


def test_identical_tokens_seen_live_and_read_back_are_kept_once_each() -> None:
    book = LogBook()

    def line(i: int, text: str) -> Line:
        key = ("t1", 1_000_000 + i // 2, "stream.token", f'{{"text":"{text}"}}')  # ties
        return Line("t1", 1.0 + (i // 2) / 1e6, "stream.token", "INFO", key[3], key)

    seen = [line(i, "a") for i in range(4)]
    for item in seen[:3]:
        book.add(item, live=True)
    book.since()  # a store read starts: it returns all four
    for item in seen:
        book.add(item)
    book.since()  # and again (overlapping reads)
    for item in seen:
        book.add(item)
    book.add(seen[3], live=True)  # the live copy of the fourth arrives late
    assert book.streams.steps["t1"].text == "aaaa"
