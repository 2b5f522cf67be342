"""The definitions registry: what an engine registers is recorded in the store, and
processes without the code list it and read its source."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pydantic
import pytest

import flovyn_nb as fn
from flovyn_nb import client
from flovyn_nb.errors import UnknownWorkflowKind
from flovyn_nb.testing import temporary_engine


class Greeting(pydantic.BaseModel):
    name: str
    times: int = 1


@fn.task(name="reg-shout")
def shout(text: str) -> str:
    return text.upper()


@fn.workflow(name="reg-greet")
async def greet(ctx: fn.WorkflowContext, greeting: Greeting) -> str:
    """Greets someone loudly."""
    return str(await ctx.schedule(shout, f"hello {greeting.name}"))


def test_a_running_engine_records_its_workflows_with_source_and_schema(
    store_path: Path,
) -> None:
    with temporary_engine(store=store_path):
        infos = {w.name: w for w in client.list_workflows()}
        info = infos["reg-greet"]
        assert info.served and info.queues == ["default"] and len(info.engines) == 1
        assert info.description == "Greets someone loudly."
        assert info.input_schema["properties"]["name"] == {"title": "Name", "type": "string"}
        assert info.output_schema == {"type": "string"}
        assert info.source_hash == greet.source_hash
        assert "async def greet(ctx" in client.workflow_source("reg-greet")
        assert "reg-shout" not in infos  # tasks are not workflows
    # Stopped: still recorded, no longer served.
    [after] = [w for w in client.list_workflows(store=store_path) if w.name == "reg-greet"]
    assert not after.served and after.engines == []


def test_an_unknown_workflow_source_is_one_typed_error(store_path: Path) -> None:
    with temporary_engine(store=store_path):
        with pytest.raises(UnknownWorkflowKind, match="no workflow 'nope' is recorded"):
            client.workflow_source("nope")
        with pytest.raises(UnknownWorkflowKind, match="with source hash 0000"):
            client.workflow_source("reg-greet", "0000")


def test_another_process_without_the_code_lists_and_reads_it(store_path: Path) -> None:
    with temporary_engine(store=store_path):
        script = (
            "import json, sys\n"
            "from flovyn_nb import client\n"
            "ws = client.list_workflows(store=sys.argv[1])\n"
            "print(json.dumps([[w.name, w.version, w.served] for w in ws]))\n"
            "print(json.dumps(client.workflow_source('reg-greet', store=sys.argv[1])))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(store_path)],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "FLOVYN_NB_LOCK_TIMEOUT": "60"},
            check=True,
        ).stdout.splitlines()
    assert ["reg-greet", 1, True] in json.loads(out[0])
    assert "Greets someone loudly." in json.loads(out[1])
