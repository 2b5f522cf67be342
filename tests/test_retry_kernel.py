"""Issue 15 in a real kernel: ``%flovyn retry`` / ``%flovyn fork`` and the hint shown
when a start hands back an old failure of code that changed since."""

from __future__ import annotations

from test_kernel import StartKernel, start_kernel, usage_error  # noqa: F401  (fixture)

SETUP = """
import flovyn_nb as fn

@fn.task(name="count-rows")
def count_rows(rows: list[int]) -> int:
    return len(rows)
"""
BROKEN = """
@fn.workflow(name="average")
async def average(ctx: fn.WorkflowContext, rows: list[int]) -> float:
    n = await ctx.schedule(count_rows, rows)
    return sum(rows) / n
"""
FIXED = """
@fn.workflow(name="average")
async def average(ctx: fn.WorkflowContext, rows: list[int]) -> float:
    n = await ctx.schedule(count_rows, rows)
    return sum(rows) / n if n else 0.0
"""
START = "h = fn.start_workflow(average, [], workflow_id='avg-1')"


def test_retry_and_fork_magics_and_the_hint(start_kernel: StartKernel) -> None:  # noqa: F811
    kernel = start_kernel()
    kernel.run("%load_ext flovyn_nb")
    kernel.run(SETUP)
    kernel.run(BROKEN)
    kernel.run(START)
    failed = kernel.run(
        "try:\n    h.result(timeout=30)\nexcept fn.WorkflowFailed as e:\n    print(e.cause['type'])"
    )
    assert failed.stdout == "ZeroDivisionError\n", failed.describe()
    same_code = kernel.run(START)
    assert "retry_run" not in same_code.texts  # the code did not change: no hint
    kernel.run(FIXED)
    again = kernel.run(START)
    hint = (
        "flovyn_nb: run 'avg-1' already failed with older code, and starting it again "
        "returned that failure; to run it again with the code now, call "
        "fn.retry_run('avg-1') (or start it with id_reuse='retry_failed')"
    )
    assert [d["text/plain"] for d in again.displays] == [hint], again.describe()

    retried = kernel.run("%flovyn retry avg-1")
    assert len(retried.displays) == 1 and "avg-1" in retried.displays[0]["text/plain"]
    assert kernel.run("fn.get_handle('avg-1').result(timeout=30)").result == "0.0"
    attempts = kernel.run(
        "[e.type.value for e in fn.get_run('avg-1').events].count('WORKFLOW_RETRIED')"
    )
    assert attempts.result == "1"

    forked = kernel.run("%flovyn fork avg-1 1 --id avg-fork --input '[2, 4]'")
    assert len(forked.displays) == 1, forked.describe()
    assert kernel.run("fn.get_handle('avg-fork').result(timeout=30)").result == "3.0"
    origin = kernel.run("fn.get_run('avg-fork').events[0].payload['forkedFrom']")
    assert origin.result == "'avg-1'"

    bad = {
        "%flovyn retry": "%flovyn retry: missing ID; usage: %flovyn retry ID",
        "%flovyn retry avg-1": "%flovyn retry: run 'avg-1' is completed",
        "%flovyn retry nope": "no run with workflow id 'nope'",
        "%flovyn fork avg-1": "missing STEP",
        "%flovyn fork avg-1 9": "step 9 is out of range: the run has 1 step",
        "%flovyn fork avg-1 nope": "no step named 'nope'",
        "%flovyn fork avg-1 1 --input {x": "--input must be JSON",
    }
    for line, expected in bad.items():
        message = usage_error(kernel.run(line, ok=False))
        assert expected in message, (line, message)
