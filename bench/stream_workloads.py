"""flovyn_nb's durable streams (issue 14): what ``ctx.stream_token`` costs a task.

An LLM step emits hundreds of tokens a second; each token is a stored row. The figures:

- *emit*: tokens per second a task can hand to ``await ctx.stream_token(...)`` (async
  task) and ``ctx.stream_token(...)`` (``def`` task, from a worker thread);
- *sustained*: tokens per second from the task's start until every token is durable in
  the store (the run's result is returned after its log rows are committed, and the
  count read back from the store must match).
"""

from __future__ import annotations

import time
from pathlib import Path

import flovyn_nb as fn
from bench.system import System
from bench.workloads import Metric, Outcome, Sizes, metric, session

_emit: dict[str, float] = {}


@fn.task(name="bench.stream_async")
async def stream_async(ctx: fn.TaskContext, tokens: int) -> int:
    started = time.perf_counter()
    for i in range(tokens):
        await ctx.stream_token(f" tok{i}")
    _emit["async"] = time.perf_counter() - started
    return tokens


@fn.task(name="bench.stream_sync")
def stream_sync(ctx: fn.TaskContext, tokens: int) -> int:
    started = time.perf_counter()
    for i in range(tokens):
        ctx.stream_token(f" tok{i}")
    _emit["sync"] = time.perf_counter() - started
    return tokens


@fn.workflow(name="bench.stream")
async def stream_workflow(ctx: fn.WorkflowContext, args: tuple[str, int]) -> int:
    flavour, tokens = args
    task = stream_async if flavour == "async" else stream_sync
    result: int = await ctx.schedule(task, tokens)
    return result


def stream_tokens(system: System, workdir: Path, sizes: Sizes) -> Outcome:
    """``repeats`` runs per flavour of one task streaming ``steps * 20`` tokens."""
    tokens = sizes.steps * 20
    emit: dict[str, list[float]] = {"async": [], "sync": []}
    sustained: dict[str, list[float]] = {"async": [], "sync": []}
    with session(system, workdir / "store.duckdb") as outcome:
        for repeat in range(sizes.repeats):
            for flavour in ("async", "sync"):
                workflow_id = f"stream-{flavour}-{repeat}"
                started = time.perf_counter()
                handle = fn.start_workflow(
                    stream_workflow, (flavour, tokens), workflow_id=workflow_id
                )
                handle.result(timeout=sizes.timeout)
                elapsed = time.perf_counter() - started
                stored = len(fn.client.run_streams(workflow_id))
                if stored != tokens:
                    raise AssertionError(f"{stored} of {tokens} tokens stored ({workflow_id})")
                emit[flavour].append(tokens / _emit[flavour])
                sustained[flavour].append(tokens / elapsed)
        outcome.details["tokens_per_run"] = tokens
    metrics: list[Metric] = [
        metric(f"stream_emit_{f}", f"stream_token emit rate ({f} task)", "tokens/s", emit[f])
        for f in ("async", "sync")
    ] + [
        metric(
            f"stream_sustained_{f}",
            f"tokens durable per second ({f} task)",
            "tokens/s",
            sustained[f],
        )
        for f in ("async", "sync")
    ]
    outcome.metrics.extend(metrics)
    return outcome
