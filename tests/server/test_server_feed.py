"""The live feed: a change made by another process reaches an open event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helper_proc import helper
from jsonlines_proc import JsonLinesProc
from pytest_jupyter.jupyter_server import url_path_join

DEADLINE = 60.0  # generous: other processes start cold on a loaded machine


class Stream:
    """An open ``GET events``: the messages and comments received so far."""

    def __init__(self) -> None:
        self.buffer = ""
        self.messages: list[dict[str, Any]] = []
        self.comments: list[str] = []

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk.decode()
        while "\n\n" in self.buffer:
            block, self.buffer = self.buffer.split("\n\n", 1)
            for line in block.splitlines():
                if line.startswith("data: "):
                    self.messages.append(json.loads(line.removeprefix("data: ")))
                elif line.startswith(":"):
                    self.comments.append(line)

    async def until(self, condition: Callable[[], Any], what: str) -> Any:
        deadline = asyncio.get_running_loop().time() + DEADLINE
        while not (found := condition()):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {what} within {DEADLINE} s; got {self.messages}")
            await asyncio.sleep(0.02)
        return found


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Callable[..., JsonLinesProc]]:
    started: list[JsonLinesProc] = []

    def spawn(*args: str) -> JsonLinesProc:
        started.append(helper(tmp_path, *args, startup=DEADLINE))
        return started[-1]

    yield spawn
    for proc in started:
        proc.kill()


@pytest.fixture
def events(http_server_client: Any, jp_auth_header: dict[str, str], jp_base_url: str) -> Any:
    async def open_stream(**headers: str) -> tuple[Stream, asyncio.Future[Any]]:
        stream = Stream()
        done = http_server_client.fetch(
            url_path_join(jp_base_url, "flovyn-nb/api/events"),
            headers={**jp_auth_header, **headers},
            streaming_callback=stream.feed,
            request_timeout=300,
            raise_error=False,
        )
        await stream.until(lambda: stream.comments, "': connected' comment")
        return stream, done

    return open_stream


@pytest.mark.slow  # two other processes
async def test_a_promise_and_a_resolve_in_other_processes_reach_the_stream(
    events: Any, procs: Any, api: Any, jp_serverapp: Any, store_path: Path, seeded: dict[str, str]
) -> None:
    stream, done = await events()
    owner = procs("owner", str(store_path), "feed-1")
    owner.expect("started")
    waiting = await stream.until(
        lambda: [m for m in stream.messages if m["type"] == "promise-waiting"],
        "promise-waiting message",
    )
    assert waiting[0] == {"type": "promise-waiting", "workflowId": "feed-1", "name": "approve"}
    assert any(m["type"] == "run-changed" and m["workflowId"] == "feed-1" for m in stream.messages)

    # A start from the API is executed by the kernel that serves the workflow (the owner).
    _, answer = await api("workflows")
    assert {w["name"]: w["served"] for w in answer["workflows"]}["approval"] is True
    status, _ = await api("workflows", "approval", "start", method="POST",
                          json={"input": 2, "workflowId": "feed-2"})  # fmt: skip
    assert status == 201
    await stream.until(
        lambda: (
            {"type": "promise-waiting", "workflowId": "feed-2", "name": "approve"}
            in stream.messages
        ),
        "promise-waiting of the run started from the API",
    )
    await asyncio.to_thread(procs("resolve", str(store_path), "feed-1").expect, "resolved")
    ended = await stream.until(
        lambda: [
            m for m in stream.messages
            if m == {"type": "run-changed", "workflowId": "feed-1", "status": "COMPLETED",
                     "statusChanged": True}
        ],
        "run-changed COMPLETED message",
    )  # fmt: skip
    assert ended
    assert (await asyncio.to_thread(owner.expect, "result"))["value"] == "approved"
    # Ended runs did not change: nothing was said about them (apr-1, waiting, was taken
    # over by the owner's engine, which serves its workflow too).
    assert {m["workflowId"] for m in stream.messages} <= {"feed-1", "feed-2", "apr-1"}

    # The server stops: the stream ends (the browser reconnects to the next server).
    jp_serverapp.web_app.settings["flovyn_nb_broadcaster"].shutdown()
    response = await asyncio.wait_for(done, DEADLINE)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")


async def test_an_idle_stream_gets_heartbeats(events: Any, seeded: dict[str, str]) -> None:
    stream, _ = await events()
    await stream.until(lambda: ": heartbeat" in stream.comments, "heartbeat")  # every 0.5 s here
    assert stream.messages == []


@pytest.mark.slow  # two other processes
async def test_changes_the_rings_describe_reach_the_stream_without_reading_the_store(
    events: Any,
    procs: Any,
    jp_serverapp: Any,
    store_path: Path,
    seeded: dict[str, str],
    api: Any,
) -> None:
    broadcaster = jp_serverapp.web_app.settings["flovyn_nb_broadcaster"]
    stream, _ = await events()
    await stream.until(lambda: broadcaster.reads and not broadcaster.reading, "baseline read")
    reads = broadcaster.reads
    # A promise settled and a run recorded by processes without an engine: their rings
    # say which run, which promise, which status.
    await asyncio.to_thread(procs("resolve", str(store_path), "apr-1").expect, "resolved")
    await stream.until(
        lambda: {"type": "run-changed", "workflowId": "apr-1", "status": "WAITING",
                 "statusChanged": False} in stream.messages,
        "run-changed message for the settled promise",
    )  # fmt: skip
    await asyncio.to_thread(procs("queue", str(store_path), "feed-q").expect, "queued")
    created = await stream.until(
        lambda: next((m for m in stream.messages if m.get("workflowId") == "feed-q"), None),
        "run-changed message for the new run",
    )
    assert broadcaster.reads == reads
    # It carries what the runs list shows of the new row, as GET runs says it.
    status, page = await api("runs", params={"q": "feed-q"})
    assert status == 200 and len(page["runs"]) == 1
    row = page["runs"][0]
    assert created == {
        "type": "run-changed",
        "workflowId": "feed-q",
        "status": "RUNNING",
        "statusChanged": True,
        "created": True,
        "executionId": row["executionId"],
        "kind": "approval",
        "createdAt": row["createdAt"],
        "queue": row["queue"],
    }


async def test_a_stream_says_connected_only_once_its_baseline_is_read(
    events: Any, jp_serverapp: Any, seeded: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser acts on "connected" (the sidebar, the tests: start a run, wait for its
    promise): a change made after it must be told, never swallowed by a baseline read
    still under way. So the stream connects only once the baseline is read."""
    import threading

    from flovyn_nb.server.feed import Broadcaster

    broadcaster = jp_serverapp.web_app.settings["flovyn_nb_broadcaster"]
    entered, release = threading.Event(), threading.Event()
    read = Broadcaster._read

    def held_read(self: Broadcaster, active: list[str]) -> Any:
        entered.set()
        release.wait(DEADLINE)
        return read(self, active)

    monkeypatch.setattr(Broadcaster, "_read", held_read)
    opening = asyncio.ensure_future(events())
    assert await asyncio.to_thread(entered.wait, DEADLINE), "the baseline read never started"
    # Observing silence, not waiting for something to happen: the read is held.
    await asyncio.sleep(1.0)
    assert not opening.done(), "the stream said connected before its baseline was read"
    release.set()
    stream, _ = await asyncio.wait_for(opening, DEADLINE)
    assert stream.comments[0] == ": connected"
    assert broadcaster._baseline
