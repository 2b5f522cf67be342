"""Does the code registered now issue a recorded prefix of steps again?

Before a fork is created (or a retry reuses steps), its workflow's current code is run
against the steps it will reuse with :func:`flovyn_nb.engine.dryrun.dry_replay`: every
command is answered from the record and nothing is executed (no task body, no ``ctx.run``
function, no timer, no store write). Going past the prefix is success; a command that
differs from the record is the :class:`DeterminismViolation` of ordinary replay, naming
the step. The replay check of ``fn.check_replay`` uses the same dry replay.
"""

from __future__ import annotations

from typing import Any

from flovyn_nb.definitions import WorkflowDefinition
from flovyn_nb.engine.dryrun import dry_replay
from flovyn_nb.errors import DeterminismViolation, InvalidInput
from flovyn_nb.store import HistoryEvent

__all__ = ["check_prefix"]


def check_prefix(
    definition: WorkflowDefinition[Any],
    workflow_id: str,
    events: list[HistoryEvent],
    input_json: Any,
    *,
    seed: str,
    timeout: float = 30.0,
) -> None:
    """Replay ``events`` (a run's kept prefix) against ``definition``'s code, with input
    ``input_json``, executing nothing.

    Raises:
        DeterminismViolation: the code issues another step than the record (names it).
        InvalidInput: the input does not fit, or the code raised while replaying the
            prefix (the message says what it raised), or it did not get past the prefix
            within ``timeout`` seconds.
    """
    result = dry_replay(definition, workflow_id, seed, input_json, events, timeout=timeout)
    error = result.error
    if error is None:
        return
    if isinstance(error, DeterminismViolation | InvalidInput):
        raise error
    if isinstance(error, TimeoutError):
        raise InvalidInput(
            f"replaying the recorded steps of {workflow_id!r} against the current code did "
            f"not finish within {timeout:g} s (does the workflow block outside ctx calls?)"
        )
    raise InvalidInput(
        f"the current code of workflow {definition.name!r} raised {type(error).__name__}: "
        f"{error} while replaying the recorded steps of {workflow_id!r}; fix it, or fork "
        "from an earlier step"
    ) from None
