"""The systems the bench can measure, by name.

``dbos`` is DBOS Transact at its default notification polling interval (1 s on SQLite),
``dbos@0.01`` the same with ``notification_listener_polling_interval_sec=0.01``;
``flovyn_nb@pg`` and ``dbos@pg`` both on one PostgreSQL server (``systems/postgres.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from bench.system import System


def _flovyn() -> System:
    from bench.systems.flovyn import FlovynSystem

    return FlovynSystem()


def _dbos(polling: float | None) -> Callable[[], System]:
    def make() -> System:
        from bench.systems.dbos import DBOSSystem

        return DBOSSystem(polling)

    return make


def _flovyn_pg() -> System:
    from bench.systems.postgres import FlovynPgSystem

    return FlovynPgSystem()


def _dbos_pg() -> System:
    from bench.systems.postgres import DBOSPgSystem

    return DBOSPgSystem()


# Factories, so a system's heavy imports happen only when it is selected.
SYSTEMS: dict[str, Callable[[], System]] = {
    "flovyn_nb": _flovyn,
    "dbos": _dbos(None),
    "dbos@0.01": _dbos(0.01),
    "flovyn_nb@pg": _flovyn_pg,
    "dbos@pg": _dbos_pg,
}
#: Systems on the bench's own PostgreSQL server (run only when named with --system).
ON_POSTGRES = ("flovyn_nb@pg", "dbos@pg")
#: What they run: the costs a server store changes.
POSTGRES_WORKLOADS = (
    "step_overhead",
    "one_step_workflow",
    "resolve_resume",
    "queue_throughput",
    "queue_recovery",
)
#: The module whose import registers a system's workflows (timed in recovery).
MODULES: dict[str, str] = {
    "flovyn_nb": "bench.systems.flovyn",
    "dbos": "bench.systems.dbos",
    "dbos@0.01": "bench.systems.dbos",
    "flovyn_nb@pg": "bench.systems.flovyn",
    "dbos@pg": "bench.systems.dbos",
}
