"""For tests of the engine's internal mechanisms (the writer's queue and commits, the
store's lease, the loop dying under a call): the engine object itself. User code and the
public API never see it; every other test goes through ``flovyn_nb`` and its client."""

from __future__ import annotations

from flovyn_nb import client
from flovyn_nb.engine.engine import Engine


def running_engine() -> Engine:
    """This process's running engine (the test started it)."""
    engine = client.running_engine()
    assert engine is not None, "no engine runs in this process"
    return engine
