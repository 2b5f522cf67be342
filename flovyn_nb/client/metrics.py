"""Metrics over every run of a time window, aggregated by the store's own SQL: step
duration distributions per workflow, failure rates per workflow, runs per day.

Three queries whatever the number of runs (no history is read into Python), written in
the SQL that DuckDB and PostgreSQL share: ``EXTRACT(EPOCH FROM …)`` for times (UTC epoch
seconds on both: DuckDB's naive timestamps are UTC, PostgreSQL's are ``timestamptz``),
``percentile_cont(…) WITHIN GROUP (ORDER BY …)``, ``count(*) FILTER (WHERE …)``, and the
``tasks`` view both stores define over the events (one row per task step).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar, cast

from flovyn_nb.client.process import store_for
from flovyn_nb.errors import InvalidInput
from flovyn_nb.model import RunStatus

__all__ = [
    "DayCount",
    "FailureRate",
    "RunMetrics",
    "StepDurations",
    "run_metrics",
]

T = TypeVar("T")
MAX_DAYS = 366
_TERMINAL = ", ".join(f"'{s.value}'" for s in RunStatus if s.is_terminal)


@dataclass(frozen=True)
class StepDurations:
    """How long the finished steps named ``step`` of ``workflow`` took (milliseconds,
    first start to last end, retries included). ``histogram`` counts them by powers of
    two: ``(upper_ms, count)`` for the bucket ``[upper_ms / 2, upper_ms)`` (the first
    bucket also holds everything under 1 ms)."""

    workflow: str
    step: str
    kind: str  # "task", or "child" for a child workflow (its runs)
    count: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    histogram: tuple[tuple[float, int], ...]


@dataclass(frozen=True)
class FailureRate:
    """Of the runs of ``workflow`` that ended, how many failed."""

    workflow: str
    finished: int
    failed: int

    @property
    def rate(self) -> float:
        return self.failed / self.finished if self.finished else 0.0


@dataclass(frozen=True)
class DayCount:
    """Runs of ``workflow`` created on ``day`` (UTC)."""

    day: date
    workflow: str
    count: int


@dataclass(frozen=True)
class RunMetrics:
    """The metrics of the runs created from ``since`` on (every one of them)."""

    since: datetime
    runs: int
    step_durations: tuple[StepDurations, ...]
    failure_rates: tuple[FailureRate, ...]
    runs_per_day: tuple[DayCount, ...]


class _Reads(Protocol):
    # Both stores run ``fn(connection)`` for reading (DuckDB's turn-taking on the file,
    # PostgreSQL's pool); either connection has DB-API ``execute(text).fetchall()``.
    def read(self, fn: Callable[[Any], T]) -> T: ...


def _epoch(column: str) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {column}) AS DOUBLE PRECISION)"


def _ms(start: str, end: str) -> str:
    return f"({_epoch(end)} - {_epoch(start)}) * 1000"


def _steps_sql(since: float) -> str:
    """One row per finished step of a run in the window: workflow, step, kind, ms."""
    return f"""
        SELECT w.kind AS workflow, t.kind AS step, 'task' AS step_kind,
            {_ms("t.started_at", "t.finished_at")} AS ms
        FROM tasks t JOIN workflow_executions w ON w.id = t.execution_id
        WHERE t.started_at IS NOT NULL AND t.finished_at IS NOT NULL
            AND {_epoch("w.created_at")} >= {since!r}
        UNION ALL
        SELECT p.kind, c.kind, 'child', {_ms("c.created_at", "c.updated_at")}
        FROM workflow_executions c JOIN workflow_executions p ON p.id = c.parent_id
        WHERE c.status IN ({_TERMINAL}) AND {_epoch("p.created_at")} >= {since!r}"""


def _queries(since: float) -> dict[str, str]:
    steps = _steps_sql(since)
    return {
        "durations": f"""
            SELECT workflow, step, step_kind, count(*),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.9) WITHIN GROUP (ORDER BY ms),
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms),
                max(ms)
            FROM ({steps}) s
            GROUP BY workflow, step, step_kind""",
        "histogram": f"""
            SELECT workflow, step, step_kind,
                CAST(floor(ln(greatest(ms, 1)) / ln(2)) AS INTEGER) AS bucket, count(*)
            FROM ({steps}) s
            GROUP BY workflow, step, step_kind, bucket""",
        "runs": f"""
            SELECT CAST(floor({_epoch("created_at")} / 86400) AS INTEGER) AS day, kind,
                count(*), count(*) FILTER (WHERE status IN ({_TERMINAL})),
                count(*) FILTER (WHERE status = '{RunStatus.FAILED.value}')
            FROM workflow_executions
            WHERE {_epoch("created_at")} >= {since!r}
            GROUP BY day, kind""",
    }


def _fetch(con: Any, since: float) -> dict[str, list[tuple[Any, ...]]]:
    return {name: list(con.execute(text).fetchall()) for name, text in _queries(since).items()}


def run_metrics(
    *,
    days: int = 14,
    now: float | None = None,
    store: str | os.PathLike[str] | None = None,
) -> RunMetrics:
    """Step durations, failure rates and runs per day of every run created in the last
    ``days`` days (UTC days; the window starts at midnight ``days - 1`` days before
    ``now``, so that each day of the answer is whole).

    Args:
        days: the window, 1 to 366 days (today included).
        now: the time the window ends (default: now).
        store: the store (default: the engine's, else the default store).

    Raises:
        InvalidInput: ``days`` out of range.
    """
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"days must be a whole number from 1 to {MAX_DAYS}, not {days!r}")
    now = time.time() if now is None else now
    since = (math.floor(now / 86400) - (days - 1)) * 86400.0
    target = cast(_Reads, store_for(store))
    rows = target.read(lambda con: _fetch(con, since))

    buckets: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
    for workflow, step, kind, bucket, count in rows["histogram"]:
        buckets.setdefault((workflow, step, kind), []).append((2.0 ** (int(bucket) + 1), count))
    durations = []
    for workflow, step, kind, count, p50, p90, p99, top in sorted(rows["durations"]):
        key = (workflow, step, kind)
        p50_ms, p90_ms, p99_ms, max_ms = (round(float(v), 1) for v in (p50, p90, p99, top))
        histogram = tuple(sorted(buckets.get(key, [])))
        durations.append(StepDurations(*key, int(count), p50_ms, p90_ms, p99_ms, max_ms, histogram))
    finished: dict[str, list[int]] = {}
    per_day = []
    for day, kind, count, ended, failed in sorted(rows["runs"]):
        per_day.append(DayCount(datetime.fromtimestamp(int(day) * 86400, UTC).date(), kind, count))
        totals = finished.setdefault(kind, [0, 0])
        totals[0] += int(ended)
        totals[1] += int(failed)
    return RunMetrics(
        since=datetime.fromtimestamp(since, UTC),
        runs=sum(d.count for d in per_day),
        step_durations=tuple(durations),
        failure_rates=tuple(
            FailureRate(kind, ended, failed)
            for kind, (ended, failed) in sorted(finished.items())
            if ended
        ),
        runs_per_day=tuple(per_day),
    )
