"""Pure functions over a run's event history: the replay index and the fold.

``replay`` indexes a history for the engine's replay (commands matched per type and
position). ``fold`` reads a history once into what everyone above shows or waits on: the
run's status, its steps with their attempts, the current waits and the earliest deadline.
Nothing here does I/O or keeps state between calls.
"""

from flovyn_nb.history.events import Event, events_of
from flovyn_nb.history.fold import fold
from flovyn_nb.history.folded import (
    Attempt,
    Deadline,
    DeadlineKind,
    Failure,
    FoldedRun,
    Step,
    StepKind,
    StepStatus,
    Wait,
    WaitKind,
)

__all__ = [
    "Attempt",
    "Deadline",
    "DeadlineKind",
    "Event",
    "Failure",
    "FoldedRun",
    "Step",
    "StepKind",
    "StepStatus",
    "Wait",
    "WaitKind",
    "events_of",
    "fold",
]
