"""The JupyterLab extension (``extension/``, built into ``flovyn_nb/labextension/``) in a
real browser against the real server extension (``flovyn_nb/server/``).

Headless Debian Chromium (never a downloaded one) drives JupyterLab started on 127.0.0.1
with a token and temporary Jupyter folders. Runs come from another process: an engine
(``ENGINE_SCRIPT``) that registers the workflows, starts a run waiting on a promise, and
starts more when the test writes commands on its stdin.

Needs the built extension (``make extension``). ``FLOVYN_EXT_BENCH=1`` also runs the
measurement with 10,000 runs (sidebar first-load time).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from flovyn_nb.testing import wait_until

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

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (make browser-deps)"),
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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
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


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
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


def test_answer_a_promise_of_another_process_from_the_inbox(
    lab: Lab, browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = open_lab(browser, lab, tmp_path)
    try:
        sidebar = page.locator(".jp-FlovynSidebar")
        row = sidebar.locator(".jp-FlovynRunRow[data-workflow-id='ext-order-1']")
        expect(row).to_have_attribute("data-status", "WAITING")
        expect(row.locator(".jp-FlovynWaiting")).to_contain_text("approval")

        item = sidebar.locator(".jp-FlovynInboxItem[data-workflow-id='ext-order-1']")
        expect(item).to_have_attribute("data-promise", "approval")
        item.get_by_role("button", name="Answer").click()
        # A value the schema refuses: the message shows, nothing is sent, the run waits.
        item.locator("input[id$='_approved']").check()
        item.locator("input[id$='_amount']").fill("0")
        item.get_by_role("button", name="Resolve").click()
        expect(item.locator(".jp-FlovynError")).to_contain_text("must be >= 1")
        expect(row).to_have_attribute("data-status", "WAITING")
        page.screenshot(path=str(tmp_path / "inbox.png"), full_page=True)

        item.locator("input[id$='_amount']").fill("3")
        item.get_by_role("button", name="Resolve").click()
        # The engine in the other process completes the run; the feed brings it here.
        expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        expect(item).to_have_count(0)

        row.click()
        view = page.locator(".jp-FlovynRunView[data-workflow-id='ext-order-1']")
        expect(view).to_have_attribute("data-status", "COMPLETED")
        view.get_by_role("tab", name="Input / output").click()
        expect(view.locator(".jp-FlovynJson").last).to_contain_text("approved=True amount=3")
        view.get_by_role("tab", name="Timeline").click()
        expect(view.locator(".jp-FlovynStep")).not_to_have_count(0)
        page.screenshot(path=str(tmp_path / "run-view.png"), full_page=True)

        # Metrics: the finished run is counted in the plots.
        page.evaluate("() => window.jupyterapp.commands.execute('flovyn-nb:open-metrics')")
        metrics = page.locator(".jp-FlovynMetrics")
        expect(metrics.locator(".jp-FlovynPlot")).not_to_have_count(0)
        page.screenshot(path=str(tmp_path / "metrics.png"), full_page=True)
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise


def test_start_a_workflow_from_its_form(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    try:
        lab.api("workflows")
    except urllib.error.HTTPError as error:
        error.close()
        if error.code != 501:
            raise
        pytest.skip("the server has no definitions registry yet (GET workflows: 501)")
    page = open_lab(browser, lab, tmp_path)
    try:
        page.locator(".jp-FlovynStartButton").click()
        panel = page.locator(".jp-FlovynStart")
        panel.locator(".jp-FlovynWorkflowPick").select_option("ext-hello")
        panel.locator("input[id$='_value']").fill("browser")
        panel.locator(".jp-FlovynStartId").fill("hello-from-form")
        panel.get_by_role("button", name="Start", exact=True).click()
        view = page.locator(".jp-FlovynRunView[data-workflow-id='hello-from-form']")
        expect(view).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        view.get_by_role("tab", name="Input / output").click()
        expect(view.locator(".jp-FlovynJson").last).to_contain_text("hello browser")
        row = page.locator(".jp-FlovynRunRow[data-workflow-id='hello-from-form']")
        expect(row).to_have_attribute("data-status", "COMPLETED")
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise


def test_notification_when_a_promise_starts_waiting(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    page = open_lab(browser, lab, tmp_path)
    try:
        page.wait_for_function("() => window.flovynNb.feed.state === 'open'")
        # Record when the new run's row reaches the screen (change-to-screen latency).
        page.evaluate(
            """() => {
                window.__seen = {};
                window.__fed = {};
                window.flovynNb.feed.subscribe(e => {
                    if (e.workflowId && !(e.workflowId in window.__fed)) {
                        window.__fed[e.workflowId] = Date.now();
                    }
                });
                new MutationObserver(() => {
                    for (const row of document.querySelectorAll('.jp-FlovynRunRow')) {
                        const id = row.dataset.workflowId;
                        if (!(id in window.__seen)) window.__seen[id] = Date.now();
                    }
                }).observe(document.body, {childList: true, subtree: true});
            }"""
        )
        answer = lab.engine.ask('start ext-confirm confirm-1 "crate"')
        started_at = float(answer.split()[2])
        toast = page.locator(".Toastify__toast", has_text="confirm-1")
        expect(toast).to_contain_text('"confirm"', timeout=30_000)
        expect(toast.get_by_role("button", name="Open")).to_be_visible()
        page.wait_for_function("() => 'confirm-1' in window.__seen")
        seen_ms = page.evaluate("() => window.__seen['confirm-1']")
        fed_ms = page.evaluate("() => window.__fed['confirm-1']")
        page.screenshot(path=str(tmp_path / "notification.png"), full_page=True)
        toast.get_by_role("button", name="Yes").click()
        row = page.locator(".jp-FlovynRunRow[data-workflow-id='confirm-1']")
        expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        assert lab.api("runs/confirm-1")["output"] == "crate: True"
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise
    print(
        f"\nlive feed, run started in another process → row on screen: "
        f"{seen_ms - started_at * 1000:.0f} ms (feed event in the browser after "
        f"{fed_ms - started_at * 1000:.0f} ms)"
    )


@pytest.mark.skipif(not os.environ.get("FLOVYN_EXT_BENCH"), reason="set FLOVYN_EXT_BENCH=1")
@pytest.mark.timeout(1800)  # seeding 10,000 runs through an engine takes minutes
def test_measure_sidebar_first_load_with_10000_runs(lab: Lab, browser: Any, tmp_path: Path) -> None:
    count = 10_000
    began = time.monotonic()
    assert lab.engine.ask(f"many {count}", timeout=1200) == f"many {count}"
    print(f"\nseeded {count} runs in {time.monotonic() - began:.0f} s")
    wait_until(lambda: lab.api("runs")["total"] > count, timeout=120, message="runs not listed")
    first_loads, next_pages, searches = [], [], []
    requests: list[list[float]] = []
    for _ in range(3):
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{lab.url}/lab?token={TOKEN}")
        # From the plugin's activation to the first page of runs on screen (the sidebar
        # renders at start-up, shown or not): one GET runs of 50 out of 10,000 and a render.
        page.wait_for_function("() => !!document.querySelector('.jp-FlovynRunRow')")
        first_loads.append(page.evaluate("() => performance.now() - window.flovynNb.activatedAt"))
        # Where the time went: the request for the page of runs (resource timing).
        requests.append(
            page.evaluate(
                """() => {
                    const r = performance.getEntriesByType('resource')
                        .find(e => e.name.includes('/flovyn-nb/api/runs?'));
                    return [r.startTime - window.flovynNb.activatedAt, r.duration];
                }"""
            )
        )
        page.evaluate(
            "() => window.jupyterapp.restored.then("
            "() => window.jupyterapp.commands.execute('flovyn-nb:open-sidebar'))"
        )
        label = page.locator(".jp-FlovynPagerLabel")
        label.filter(has_text=f"of {count + 1:,}").wait_for()
        t0 = page.evaluate("() => performance.now()")
        page.locator(".jp-FlovynNext").click()
        label.filter(has_text="51\u2013100").wait_for()
        next_pages.append(page.evaluate(f"() => performance.now() - {t0}"))
        t0 = page.evaluate("() => performance.now()")
        page.locator(".jp-FlovynSearch").fill("bulk-00777")
        page.locator(".jp-FlovynRunList[data-total='1']").wait_for(state="attached")
        searches.append(page.evaluate(f"() => performance.now() - {t0}"))
        page.close()

    def ms(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in sorted(values)) + " ms"

    print(f"sidebar first load with {count + 1} runs (activation → rows): {ms(first_loads)}")
    print(
        "  of which GET runs (sent after activation ms, took ms): "
        + ", ".join(f"({a:.0f}, {b:.0f})" for a, b in requests)
    )
    print(f"next page click → rows 51-100 on screen: {ms(next_pages)}")
    print(f"search typed → 1 match on screen (incl. 250 ms debounce): {ms(searches)}")


def test_bulk_resolve_the_selected_promises(lab: Lab, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    for n in (1, 2):
        lab.engine.ask(f'start ext-confirm bulk-confirm-{n} "box {n}"')
    page = open_lab(browser, lab, tmp_path)
    try:
        inbox = page.locator(".jp-FlovynInbox")
        for n in (1, 2):
            item = inbox.locator(f".jp-FlovynInboxItem[data-workflow-id='bulk-confirm-{n}']")
            item.get_by_role("checkbox").check()
        bulk = inbox.locator(".jp-FlovynBulk")
        bulk.locator("input[type='checkbox'][id$='_value']").check()
        bulk.get_by_role("button", name="Resolve 2 selected").click()
        for n in (1, 2):
            row = page.locator(f".jp-FlovynRunRow[data-workflow-id='bulk-confirm-{n}']")
            expect(row).to_have_attribute("data-status", "COMPLETED", timeout=30_000)
        expect(inbox.locator(".jp-FlovynInboxItem[data-workflow-id^='bulk-']")).to_have_count(0)
        assert lab.api("runs/bulk-confirm-2")["output"] == "box 2: True"
    except BaseException:
        shoot_on_failure(page, tmp_path, lab)
        raise
