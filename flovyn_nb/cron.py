"""Cron expressions (via ``cronsim``): checking them and listing their slots. A leaf,
used by ``@workflow(schedule=...)``, the client and the engine's schedules."""

from __future__ import annotations

from datetime import UTC, datetime

from flovyn_nb.errors import InvalidInput

CATCH_UP = ("none", "one", "all")


def check_cron(cron: object) -> str:
    """``cron`` if it is a valid cron expression.

    Raises:
        InvalidInput: it is not (the message says why and shows an example).
    """
    from cronsim import CronSim, CronSimError

    if not isinstance(cron, str) or not cron.strip():
        raise InvalidInput(f"a cron expression must be a non-empty string, got {cron!r}")
    try:
        CronSim(cron, datetime.now(UTC))
    except CronSimError as exc:
        raise InvalidInput(
            f"bad cron expression {cron!r}: {exc}; e.g. '0 6 * * *' (every day at 06:00 UTC)"
        ) from None
    return cron


def check_catch_up(catch_up: object) -> str:
    if catch_up not in CATCH_UP:
        raise InvalidInput(f"catch_up must be one of {', '.join(CATCH_UP)}, got {catch_up!r}")
    return str(catch_up)


def slots_after(cron: str, after: float, until: float, limit: int) -> list[float]:
    """The slots of ``cron`` in (after, until], at most ``limit`` (the latest kept)."""
    from cronsim import CronSim

    found: list[float] = []
    for moment in CronSim(cron, datetime.fromtimestamp(after, UTC)):
        slot = moment.timestamp()
        if slot > until:
            break
        found.append(slot)
        if len(found) > limit:
            found.pop(0)
    return found


def next_slot(cron: str, after: float) -> float:
    from cronsim import CronSim

    return next(iter(CronSim(cron, datetime.fromtimestamp(after, UTC)))).timestamp()


def run_id(name: str, slot: float) -> str:
    """The workflow id of the run of ``name``'s slot at ``slot``."""
    iso = datetime.fromtimestamp(slot, UTC).isoformat().replace("+00:00", "Z")
    return f"sched-{name}-{iso}"
