"""``fn.check_replay``: would the code registered now replay the recorded runs?

Each run's history is replayed against the current definition with nothing executed (no
task body, no ``ctx.run`` function, no store write; see ``engine.dryrun``). The answer
is one :class:`ReplayCheck` per run, so a user who edited a workflow's cell learns, before
any run is resumed on the new code, which run would break and at which step.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from flovyn_nb.client.reads import reads
from flovyn_nb.definitions import WorkflowDefinition, registry
from flovyn_nb.engine.dryrun import dry_replay
from flovyn_nb.errors import DeterminismViolation, InvalidInput
from flovyn_nb.model import ACTIVE_STATUSES, RunInfo

__all__ = ["ReplayCheck", "check_replay", "summary"]


@dataclass(frozen=True)
class ReplayCheck:
    """The replay check of one run.

    Attributes:
        workflow_id: the run checked.
        ok: the current code re-issued every recorded step (it then stopped at the end
            of the history, which is where the run stands; that is not a failure).
        error: why not: usually the :class:`~flovyn_nb.errors.DeterminismViolation`
            (its ``step``, ``recorded`` and ``issued`` say where and how the code
            differs), or another error the code raised while the history says the run
            went on; None when ``ok``.
        steps: recorded steps the code re-issued.
        stopped: where the replay stopped, in words.
    """

    workflow_id: str
    ok: bool
    error: BaseException | None
    steps: int
    stopped: str

    def __str__(self) -> str:
        if self.ok:
            return f"{self.workflow_id}: replays OK ({self.steps} step(s); {self.stopped})"
        return f"{self.workflow_id}: {describe_error(self.error)}"


def describe_error(error: BaseException | None) -> str:
    """One line naming the step, what history recorded and what the code issued."""
    if isinstance(error, DeterminismViolation) and error.step:
        return (
            f"breaks at step {error.step}: history recorded {error.recorded}, "
            f"the code now issues {error.issued}"
        )
    if error is None:
        return "replays OK"
    return f"fails on replay: {type(error).__name__}: {' '.join(str(error).split())}"


def check_replay(
    workflow: WorkflowDefinition[Any] | str,
    runs: Iterable[str] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
) -> list[ReplayCheck]:
    """Replay recorded runs against the workflow's code registered now, executing nothing.

    Args:
        workflow: the workflow (its definition, or its registered name).
        runs: workflow ids to check; default: every run of the workflow still in flight.
        store: the store to read (default: the engine's, or the default store file).

    Returns:
        One :class:`ReplayCheck` per run, in the order asked (newest first by default).

    Raises:
        UnknownWorkflowKind: no workflow of that name is registered in this process.
        UnknownWorkflow: a run id that the store does not know.
        InvalidInput: a run of another workflow.
    """
    client = reads()
    definition = (
        workflow if isinstance(workflow, WorkflowDefinition) else registry.workflow(workflow)
    )
    if runs is None:
        chosen = client.list_runs(status=ACTIVE_STATUSES, kind=definition.name, store=store)
        infos = [client.get_run(r.workflow_id, store=store) for r in chosen]
    else:
        if isinstance(runs, str):
            runs = [runs]
        infos = [client.get_run(workflow_id, store=store) for workflow_id in runs]
        for info in infos:
            if info.kind != definition.name:
                raise InvalidInput(
                    f"run {info.workflow_id!r} is a run of {info.kind!r}, not of "
                    f"{definition.name!r}: check it with check_replay({info.kind!r}, ...)"
                )
    return [_check(definition, info) for info in infos]


def _check(definition: WorkflowDefinition[Any], info: RunInfo) -> ReplayCheck:
    events = [(e.seq, e.type.value, e.payload, e.ts.timestamp()) for e in info.events]
    result = dry_replay(definition, info.workflow_id, info.execution_id, info.input, events)
    return ReplayCheck(
        workflow_id=info.workflow_id,
        ok=result.error is None,
        error=result.error,
        steps=result.steps,
        stopped=result.stopped,
    )


def summary(name: str, results: Sequence[ReplayCheck], *, shown: int = 5) -> str:
    """One line (or a few) for a notebook: "3 in-flight run(s) of 'x' replay OK" or which
    run breaks at which step."""
    bad = [r for r in results if not r.ok]
    if not bad:
        return f"{len(results)} in-flight run(s) of {name!r} replay OK on the new code"
    lines = [
        (
            f"{len(bad)} of {len(results)} in-flight run(s) of {name!r} would not replay on "
            "the new code (runs resumed from the store, after a restart or by another "
            "process, would fail with DeterminismViolation):"
        )
    ]
    lines += [f"  {r.workflow_id}: {describe_error(r.error)}" for r in bad[:shown]]
    if len(bad) > shown:
        lines.append(f"  and {len(bad) - shown} more")
    lines.append(
        'Keep the old steps for old runs with `if ctx.patched("my-change"): ... else: ...`, '
        "or cancel them."
    )
    return "\n".join(lines)
