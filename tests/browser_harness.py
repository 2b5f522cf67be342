"""What the real-browser tests share: a JupyterLab server on a temporary setup and a
headless Debian Chromium (never a downloaded one).

The server runs on 127.0.0.1 with a fixed token, and every Jupyter folder (config, data,
runtime, settings, workspaces) is a temporary one, so a test neither sees nor changes the
user's setup.
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

import nbformat

import flovyn_nb
from flovyn_nb.testing import wait_until

CHROMIUM = Path("/usr/bin/chromium")
TOKEN = "flovyn-browser-test"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

KERNEL_READY = """() => {
    const widget = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const context = widget && widget.sessionContext;
    const kernel = context && context.session && context.session.kernel;
    return !!(context && context.isReady && kernel && kernel.status === "idle"
              && kernel.connectionStatus === "connected");
}"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    url: str
    root: Path
    store: Path


def write_notebook(path: Path, cells: list[str]) -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {  # without one, JupyterLab asks for a kernel
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(notebook, path)


@contextmanager
def start_lab(
    folder: Path, *, settings: dict[str, dict[str, object]] | None = None
) -> Iterator[Lab]:
    """A JupyterLab server serving ``folder/root``; its kernels use ``folder/flovyn.duckdb``.

    ``settings``: JupyterLab settings by plugin file (``"@jupyterlab/apputils-extension/
    themes"`` → its JSON), e.g. to choose the dark theme.
    """
    root, home = folder / "root", folder / "jupyter"
    root.mkdir(exist_ok=True)
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    # No news toast, no update check: nothing but the notebook on screen, no network.
    (config / "jupyter_lab_config.py").write_text(
        "c.LabApp.news_url = None\n"
        "c.LabApp.check_for_updates_class = 'jupyterlab.NeverCheckForUpdate'\n"
        # window.jupyterapp: the test asks the notebook itself whether its kernel is ready.
        "c.LabApp.expose_app_in_browser = True\n"
    )
    plugin_settings = {
        "@jupyterlab/apputils-extension/notification": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        **(settings or {}),
    }
    for name, values in plugin_settings.items():
        target = home / "settings" / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    # The front end of the flovyn_nb under test (a worktree's build), ahead of the one the
    # venv links: JUPYTER_PATH comes first on JupyterLab's extension path (before the venv,
    # which a venv's jupyter_core puts before the user data dir).
    built = Path(flovyn_nb.__file__).parent / "labextension"
    if (built / "package.json").is_file():
        linked = home / "path" / "labextensions" / "flovyn-nb"
        linked.parent.mkdir(parents=True, exist_ok=True)
        if not linked.exists():
            linked.symlink_to(built, target_is_directory=True)
    store = folder / "flovyn.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "FLOVYN_NB"))}
    env.update(
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_PATH=str(home / "path"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        FLOVYN_NB_STORE=str(store),  # the kernel inherits it: %load_ext opens this store
    )
    port = free_port()
    log_path = folder / "jupyterlab.log"
    log = log_path.open("wb")
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
    try:

        def ready() -> bool:
            assert server.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(ready, timeout=60, interval=0.1, message="JupyterLab did not start")
        yield Lab(url, root, store)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
