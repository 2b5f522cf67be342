"""Step logs: print, stderr, logging and ctx.logger are stored per step, never printed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent(
    """
    import logging, sys
    import flovyn_nb as fn

    logging.basicConfig(level=logging.INFO)  # a console handler that must not see step logs

    @fn.task(name="noisy")
    def noisy(n: int) -> int:
        print("task-print", n)
        print("task-stderr", file=sys.stderr)
        logging.getLogger("user.lib").warning("task-logging")
        return n

    @fn.task(name="noisy-async")
    async def noisy_async(n: int) -> int:
        print("async-task-print", n, end="")
        return n

    @fn.workflow(name="noisy-wf")
    async def wf(ctx: fn.WorkflowContext) -> int:
        print("workflow-print")
        ctx.logger.warning("workflow-ctx-logger")
        await ctx.schedule(noisy, 1)
        return await ctx.schedule(noisy_async, 2)

    with fn.start(sys.argv[1]):
        assert fn.start_workflow(wf, workflow_id="noisy").result(timeout=30) == 2
        for entry in fn.run_logs("noisy"):
            kind = "task" if entry.task_execution_id else "workflow"
            sys.__stdout__.write(f"LOG {kind} {entry.stream} {entry.level} {entry.message}\\n")
    print("outside-print")
    logging.getLogger("user.lib").warning("outside-logging")
    """
)


def test_step_output_goes_to_the_store_not_the_console(tmp_path: Path) -> None:
    script = tmp_path / "noisy.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "s.duckdb")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    logs = [line for line in proc.stdout.splitlines() if line.startswith("LOG ")]
    assert logs == [
        "LOG workflow stdout INFO workflow-print",
        "LOG workflow log WARNING workflow-ctx-logger",
        "LOG task stdout INFO task-print 1",
        "LOG task stderr ERROR task-stderr",
        "LOG task log WARNING user.lib: task-logging",
        "LOG task stdout INFO async-task-print 2",
    ]
    console = "\n".join(line for line in proc.stdout.splitlines() if not line.startswith("LOG "))
    console += proc.stderr
    for leaked in ("task-print", "task-stderr", "task-logging", "workflow-print", "workflow-ctx"):
        assert leaked not in console
    # Outside steps, output and logging behave as usual again.
    assert "outside-print" in proc.stdout
    assert "outside-logging" in proc.stderr
