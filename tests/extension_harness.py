"""What the real-browser tests of the JupyterLab extension share: JupyterLab on a temporary
setup with the server extension enabled and the built front end linked, an engine in
another process that serves the test workflows, and headless Debian Chromium (never a
downloaded one).

The engine process (``ENGINE_SCRIPT``) registers the workflows, starts a run waiting on a
promise, and obeys commands written on its stdin, one a line:

- ``start KIND ID JSON``: start a run (answers ``started ID EPOCH``);
- ``many N``: start N runs of ``ext-bulk`` (answers ``many N``);
- ``schedule NAME KIND CRON``: schedule KIND with the input NAME (answers ``scheduled NAME``);
- ``fix``: register the fixed version of the task ``ext-divide``, as re-running a fixed
  cell does (answers ``fixed``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from flovyn_nb.testing import wait_until

__all__ = [
    "CHROMIUM",
    "TOKEN",
    "Engine",
    "Lab",
    "open_browser",
    "open_lab",
    "shoot_on_failure",
    "start_lab",
]

REPO = Path(__file__).resolve().parent.parent
LABEXTENSION = REPO / "flovyn_nb" / "labextension"
CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "flovyn-extension-test"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# The other process: its engine serves these workflows. Commands on stdin, one a line:
# "start KIND ID JSON" starts a run; it answers each with "started ID EPOCH" on stdout.
ENGINE_SCRIPT = """\
import json, sys, time
import pydantic
import flovyn_nb as fn

class Decision(pydantic.BaseModel):
    approved: bool
    amount: int = pydantic.Field(ge=1, description="units to order")

@fn.workflow(name="ext-approval")
async def approval(ctx: fn.WorkflowContext, table: str) -> str:
    decision = await ctx.promise("approval", timeout=3600, type_hint=Decision)
    return f"approved={decision.approved} amount={decision.amount}"

@fn.workflow(name="ext-confirm")
async def confirm(ctx: fn.WorkflowContext, item: str) -> str:
    ok = await ctx.promise("confirm", timeout=3600, type_hint=bool)
    return f"{item}: {ok}"

@fn.workflow(name="ext-hello")
async def hello(ctx: fn.WorkflowContext, name: str) -> str:
    return f"hello {name}"

@fn.workflow(name="ext-bulk")
async def bulk(ctx: fn.WorkflowContext, n: int) -> int:
    return n

@fn.task(name="ext-double")
def double(x: int) -> int:
    return 2 * x

def divide_v1(x: int) -> int:
    return 1000 // (x - x)  # the bug: always divides by zero

def divide_v2(x: int) -> int:
    return 1000 // x

fn.task(name="ext-divide")(divide_v1)

@fn.workflow(name="ext-calc")
async def calc(ctx: fn.WorkflowContext, x: int) -> list[int]:
    doubled = await ctx.schedule(double, x)
    divided = await ctx.schedule("ext-divide", doubled)  # by name: the task registered now
    return [doubled, divided]

fn.start(store=sys.argv[1])
fn.start_workflow(approval, "orders", workflow_id="ext-order-1")
print("ready", flush=True)
for line in sys.stdin:
    parts = line.split(" ", 3)
    if parts[0] == "start":
        fn.start_workflow(parts[1], json.loads(parts[3]), workflow_id=parts[2])
        print(f"started {parts[2]} {time.time():.6f}", flush=True)
    elif parts[0] == "many":
        count = int(parts[1])
        for i in range(count):
            fn.start_workflow("ext-bulk", i, workflow_id=f"bulk-{i:05d}")
        print(f"many {count}", flush=True)
    elif parts[0] == "schedule":
        fn.schedule(parts[2], cron=parts[3].strip(), name=parts[1], input=parts[1])
        print(f"scheduled {parts[1]}", flush=True)
    elif parts[0].strip() == "fix":
        fn.task(name="ext-divide")(divide_v2)  # as re-running the fixed cell does
        print("fixed", flush=True)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Engine:
    proc: subprocess.Popen[str]
    stdin: IO[str]
    stdout: IO[str]

    def ask(self, command: str, timeout: float = 60) -> str:
        """Sends one command and returns the engine's one-line answer."""
        self.stdin.write(command + "\n")
        self.stdin.flush()
        return self.read_line(timeout)

    def read_line(self, timeout: float = 60) -> str:
        lines: list[str] = []

        def got() -> bool:
            assert self.proc.poll() is None, "the engine process died"
            line = self.stdout.readline()
            if line:
                lines.append(line.strip())
            return bool(lines)

        wait_until(got, timeout=timeout, interval=0.01, message="the engine did not answer")
        return lines[0]


@dataclass
class Lab:
    url: str
    root: Path
    store: Path
    engine: Engine
    log: Path

    def api(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/flovyn-nb/api/{path}?token={TOKEN}") as r:
            return json.loads(r.read())


@contextmanager
def start_lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab and the engine process, both stopped on exit."""
    if not (LABEXTENSION / "package.json").exists():
        pytest.fail(f"{LABEXTENSION} is missing: build the extension first (make extension)")
    root, home = tmp_path / "root", tmp_path / "jupyter"
    root.mkdir()
    config = home / "config"
    config.mkdir(parents=True)
    (config / "jupyter_lab_config.py").write_text(
        "c.LabApp.news_url = None\n"
        "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n"
        "c.LabApp.expose_app_in_browser = True\n"
    )
    # The server extension, enabled as the wheel's jupyter_server_config.d file does.
    (config / "jupyter_server_config.d").mkdir()
    (config / "jupyter_server_config.d" / "flovyn_nb.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"flovyn_nb": True}}})
    )
    # The built extension, as `jupyter labextension develop` links it (temporary data dir:
    # the test never touches the environment's share/jupyter).
    labextensions = home / "data" / "labextensions"
    labextensions.mkdir(parents=True)
    (labextensions / "flovyn-nb").symlink_to(LABEXTENSION)
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    store = tmp_path / "flovyn.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "FLOVYN_NB"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        FLOVYN_NB_STORE=str(store),
        # In a virtual environment jupyter_core searches the environment's share/jupyter
        # first, where `make extension` links the checkout it ran in: the user data folder
        # must come first, or the test would load another build than this checkout's.
        JUPYTER_PREFER_ENV_PATH="0",
    )
    script = tmp_path / "engine_proc.py"
    script.write_text(ENGINE_SCRIPT)
    engine_log = (tmp_path / "engine.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(script), str(store)],
        cwd=tmp_path, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=engine_log, text=True, bufsize=1,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    engine = Engine(proc, proc.stdin, proc.stdout)
    port = _free_port()
    log_path = tmp_path / "jupyterlab.log"
    log = log_path.open("wb")
    server: subprocess.Popen[bytes] | None = None
    try:
        assert engine.read_line(timeout=60) == "ready", (tmp_path / "engine.log").read_text()
        server = subprocess.Popen(
            [
                sys.executable, "-m", "jupyterlab", "--no-browser",
                "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}",
                f"--ServerApp.root_dir={root}", "--ServerApp.allow_root=True",
            ],
            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert server is not None and server.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(ready, timeout=60, interval=0.1, message="JupyterLab did not start")
        yield Lab(url, root, store, engine, log_path)
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
        log.close()
        proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
        engine_log.close()


@contextmanager
def open_browser(tmp_path: Path) -> Iterator[Any]:
    """A Playwright browser context on Debian's Chromium, with a fresh profile."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def open_lab(context: Any, lab: Lab, tmp_path: Path) -> Any:
    """Opens JupyterLab with the flovyn sidebar shown and its first page loaded."""
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{lab.url}/lab?token={TOKEN}")
    page.wait_for_function("() => !!(window.jupyterapp && window.flovynNb)", timeout=60_000)
    # After the layout is restored (it would otherwise bring the file browser back).
    page.evaluate(
        "() => window.jupyterapp.restored.then("
        "() => window.jupyterapp.commands.execute('flovyn-nb:open-sidebar'))"
    )
    page.locator(".jp-FlovynSidebar .jp-FlovynRunList[data-total]").wait_for(state="attached")
    return page


def shoot_on_failure(page: Any, tmp_path: Path, lab: Lab) -> None:
    failure = tmp_path / "failure.png"
    page.screenshot(path=str(failure), full_page=True)
    print(f"\nscreenshot of the failure: {failure}\nserver log: {lab.log}")


# The fixtures of the extension's browser test files (imported there by these names).
@pytest.fixture(name="lab")
def lab_fixture(tmp_path: Path) -> Iterator[Lab]:
    """A JupyterLab of its own for the test, on a fresh store with an engine process."""
    with start_lab(tmp_path) as started:
        yield started


@pytest.fixture(name="browser")
def browser_fixture(tmp_path: Path) -> Iterator[Any]:
    """A headless Chromium context (Debian's, never a downloaded one)."""
    with open_browser(tmp_path) as context:
        yield context
