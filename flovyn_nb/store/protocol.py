"""The store seam: what the engine, the client and the tools may ask of a store.

:class:`Store` has one method per intent; no connection, statement or driver type
crosses it (the rows are in :mod:`flovyn_nb.store.rows`). Backends live in their own
folder (``duckdb/`` now, ``postgres/`` next) and pass ``tests/store_contract/``.

Writes the engine makes go through :meth:`Store.commit`: a list of :class:`Change` objects
applied in one transaction (the engine's group commit). A change carries rows (events,
logs, new runs, run-row updates, new promises, promises delivered or timed out) and
typed *intents* for everything else (:class:`ReleaseRun`, :class:`SettlePromise`, ...).
Each change has one result: the row of its new promise, else the result of its last
intent, else ``None``. A commit that raises changed nothing.

Writes other processes make into a run's inbox (:meth:`Store.settle_promise`,
:meth:`Store.send_signal`, :meth:`Store.request_cancel`) check everything first with the
rules in :mod:`flovyn_nb.store.inbox_rules`, inside the transaction, so bad input
changes nothing.

After every committed write the store rings its :class:`Doorbell`, before any other
process can write: a watcher that sees no ring by others knows nobody else committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from flovyn_nb.model import LogEntry, PromiseInfo, PromiseStatus, RunInfo, RunStatus
from flovyn_nb.store.rows import (
    Claimed,
    EngineRow,
    EventRow,
    HistoryEvent,
    Inbox,
    LogRow,
    NewPromise,
    NewRun,
    PromiseRow,
    RunRow,
    RunUpdate,
)
from flovyn_nb.store.runquery import RunPage, RunQuery
from flovyn_nb.store.taskqueue import (
    CancelTasks,
    ClaimTasks,
    FinishTask,
    QueuedTask,
    QueueTask,
    TaskProgress,
)

if TYPE_CHECKING:
    import pandas

    from flovyn_nb.store.catalog import (
        DefinitionRow,
        FireSchedule,
        NewDefinition,
        QueueRow,
        ScheduleRow,
    )
    from flovyn_nb.store.news import News

# -- intents: the small writes that ride along in a change ------------------------------


@dataclass(frozen=True, slots=True)
class ReleaseRun:
    """Hand a run back (clear its owner) if ``engine_id`` still owns it. Result: None."""

    execution_id: str
    engine_id: str


@dataclass(frozen=True, slots=True)
class ResetPromise:
    """Make a settled promise pending again, undelivered (a replay found no record of its
    outcome). Result: None."""

    promise_id: str


@dataclass(frozen=True, slots=True)
class MarkSignalDelivered:
    """The signal reached its run. Result: None."""

    signal_id: str


@dataclass(frozen=True, slots=True)
class FlagCancel:
    """Set the cancel flag of a run its owner cancels itself. Result: None."""

    execution_id: str


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """The engine is alive at ``now``. Result: None."""

    engine_id: str
    now: float


@dataclass(frozen=True, slots=True)
class TimeOutPromises:
    """Time out the still-pending promises among those ``take()`` names, as of their
    deadline, marked delivered (their owner hands the timeout over itself).

    ``take`` is called once, inside the transaction, so timeouts that fall due while the
    change waits for its commit join it. Result: every one of those promises' rows as it
    is now (some may have been settled before their deadline).
    """

    take: Callable[[], Sequence[str]]


@dataclass(frozen=True, slots=True)
class Claim:
    """Take over the active runs of ``kinds`` waiting in ``queues`` whose owner is none or
    not alive, and load their histories (oldest runs first, at most ``limit``).

    ``alive(engine)`` says whether a registered engine still lives (the policy stays with
    the engine); the ones that do not are marked stopped. ``engine_id`` counts as alive.
    The queues' limits (:meth:`Store.set_queue`) hold runs back: at most ``concurrency``
    runs of a queue claimed and not ended across engines, ``worker_concurrency`` held by
    this engine, ``rate_limit`` first claims per ``rate_period`` (judged at ``now``,
    default the store's time). A run's first claim stamps its claim time; a run taken
    over from a dead engine holds its queue slot already. Picking is one statement.
    Result: :class:`~flovyn_nb.store.rows.Claimed` (``more``: runs were held back).
    """

    engine_id: str
    kinds: Sequence[str]
    alive: Callable[[EngineRow], bool]
    limit: int | None = None
    queues: Sequence[str] = ("default",)
    now: float | None = None


@dataclass(frozen=True, slots=True)
class SettlePromise:
    """Resolve or reject the promise ``name`` of run ``workflow_id`` (see
    :func:`flovyn_nb.store.inbox_rules.check_settle` for the rules).

    ``now`` is called inside the transaction: at or after the promise's deadline the
    settle fails. ``validated``: the caller checked ``value`` against the promise's Python
    type already; otherwise it is checked against the stored JSON schema.
    Result: the settled :class:`~flovyn_nb.store.rows.PromiseRow`.
    """

    workflow_id: str
    name: str
    status: PromiseStatus
    value: Any
    reason: str | None
    resolved_by: str
    now: Callable[[], float]
    validated: bool = False
    require_existing: bool = False
    # Return the value as JSON data in the row (a caller that only writes the inbox says
    # False: no copy of a big value is made).
    keep_value: bool = True


@dataclass(frozen=True, slots=True)
class SendSignal:
    """Send a signal to an active run. Result: the run's :class:`RunRow`."""

    workflow_id: str
    name: str
    value: Any
    now: float


@dataclass(frozen=True, slots=True)
class RequestCancel:
    """Ask an active run (by workflow id) to cancel. Result: the run's :class:`RunRow`.

    ``reason`` is kept with the request; the owner records it in CANCELLATION_REQUESTED
    and the workflow sees it as ``WorkflowCancelled.reason``."""

    workflow_id: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CacheStep:
    """Remember a completed step of a cached task (``@task(cache=True)``) so that later
    identical steps can reuse its output (see :meth:`Store.find_cached_step`)."""

    task_kind: str
    source_hash: str
    input_hash: str
    execution_id: str
    task_execution_id: str
    output: str  # JSON text
    now: float


@dataclass(frozen=True, slots=True)
class CachedStep:
    """A completed step whose output a new identical step may reuse."""

    workflow_id: str
    execution_id: str
    task_execution_id: str
    output: Any  # the JSON value


@dataclass(frozen=True, slots=True)
class ReopenRun:
    """Make an ended run runnable again, as a new attempt (a retry): status RUNNING, no
    owner (the engine that has its workflow registered claims it), no output or error, no
    cancel request, ``source_hash`` the code's it will run with. The promises named in
    ``forget_promises`` (their record was superseded) are deleted: the new attempt creates
    them again when it reaches them (a value sent before that is an early resolution).

    Checked inside the transaction: the run's status must be one of ``statuses``.
    Result: the run's :class:`RunRow` as it was before.

    Raises:
        UnknownWorkflow: no run with that execution id.
        InvalidInput: the run's status is not one of ``statuses`` (the message names it).
    """

    execution_id: str
    statuses: tuple[RunStatus, ...]
    now: float
    source_hash: str | None = None
    forget_promises: tuple[str, ...] = ()


Intent = (
    ReleaseRun
    | ReopenRun
    | ResetPromise
    | MarkSignalDelivered
    | FlagCancel
    | Heartbeat
    | TimeOutPromises
    | Claim
    | SettlePromise
    | SendSignal
    | RequestCancel
    | CacheStep
    # the task queue (store/taskqueue.py)
    | QueueTask
    | ClaimTasks
    | TaskProgress
    | FinishTask
    | CancelTasks
)


@dataclass(eq=False, slots=True)
class Change:
    """One writer's part of a commit (see the module docs for its result)."""

    events: list[EventRow] = field(default_factory=list)
    logs: list[LogRow] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)
    new_run: NewRun | None = None  # inserted before the commit's events
    run_update: RunUpdate | None = None
    statuses: list[RunUpdate] = field(default_factory=list)  # lagging run rows catching up
    new_promise: NewPromise | None = None  # its row becomes the result
    delivered: list[str] = field(default_factory=list)  # promises handed to their workflow
    timed_out: list[str] = field(default_factory=list)  # promise timeouts decided in memory


# -- the doorbell -------------------------------------------------------------------------


class DoorbellWatcher(Protocol):
    """One observer's view of the doorbell."""

    def rung_by_others(self) -> bool:
        """Whether another process committed since the last look (cheap: no query)."""
        ...

    def engines_may_have_joined(self) -> bool:
        """Whether an engine may have registered among the rings ``rung_by_others``
        reported since the last call (a backend that cannot tell says True after any)."""
        ...

    def news(self) -> list[News] | None:
        """What the rings ``rung_by_others`` reported since the last call said (see
        :mod:`flovyn_nb.store.news`; a process's own rings may be among them); ``None``
        when some of them cannot be told: read the store instead. A backend may start
        keeping them only at the first call (``None`` then, if anything rang before)."""
        ...


class Doorbell(Protocol):
    """Rings after every commit; other processes notice without asking the database."""

    def ring(self) -> None: ...

    def watcher(self) -> DoorbellWatcher:
        """A watcher that counts rings from now on."""
        ...


# -- the store ---------------------------------------------------------------------------


class Store(Protocol):
    """A flovyn store (see the module docs). Every method is thread-safe and may block;
    errors leave as :class:`~flovyn_nb.errors.FlovynError` subclasses, never a driver's."""

    @property
    def location(self) -> str:
        """The store's one true name (a canonical file path, or a URL without password)."""
        ...

    @property
    def doorbell(self) -> Doorbell: ...

    @property
    def work_bell(self) -> Doorbell:
        """Rings after a commit that left runs waiting for an engine: a run started
        without an owner, runs released (a stopping engine), a queue's limits changed, a
        schedule fired. Engines claim when it rings."""
        ...

    @property
    def slot_bell(self) -> Doorbell:
        """Rings after a commit that ended runs (a slot of their queue is free). Engines
        whose last claim left runs waiting for a slot claim when it rings."""
        ...

    # -- the engine's writes

    def commit(self, changes: Sequence[Change]) -> list[Any]:
        """Apply the changes in one transaction; return each change's result.

        Raises:
            DuplicateWorkflowId: a new run's workflow id is taken; nothing changed.
            StoreLocked: the store stayed held by another process; nothing changed.
            FlovynError: an intent's rules refused it (e.g. UnknownWorkflow); nothing changed.
        """
        ...

    def register_engine(
        self, engine_id: str, *, pid: int, host: str, proc_start: str | None, now: float
    ) -> None: ...

    def stop_engine(self, engine_id: str) -> None:
        """Hand back every run the engine owns and mark it stopped (one transaction)."""
        ...

    def live_engines(self) -> list[EngineRow]:
        """Every engine not marked stopped (dead ones included)."""
        ...

    def claim(
        self,
        engine_id: str,
        kinds: Sequence[str],
        alive: Callable[[EngineRow], bool],
        *,
        limit: int | None = None,
        queues: Sequence[str] = ("default",),
        now: float | None = None,
    ) -> Claimed:
        """Commit one :class:`Claim` on its own."""
        ...

    def release_runs(self, engine_id: str) -> None:
        """Clear the owner of every run ``engine_id`` owns."""
        ...

    def time_out_promises(self, promise_ids: Sequence[str]) -> list[PromiseRow]:
        """Commit one :class:`TimeOutPromises` on its own."""
        ...

    # -- inbox writes (any process)

    def settle_promise(self, request: SettlePromise) -> PromiseRow:
        """Resolve or reject a promise (early: before the workflow reaches it, unless
        ``require_existing``).

        Raises:
            UnknownWorkflow, UnknownPromise, PromiseAlreadyResolved, InvalidInput.
        """
        ...

    def send_signal(self, request: SendSignal) -> RunRow:
        """Raises: UnknownWorkflow, InvalidInput (ended run, empty name, bad value)."""
        ...

    def request_cancel(self, workflow_id: str, reason: str = "") -> RunRow:
        """Ask the run to cancel, keeping ``reason`` for its owner (``Inbox.cancel_reasons``).

        Raises: UnknownWorkflow, InvalidInput (the run ended)."""
        ...

    # -- the engine's reads

    def find_run(self, workflow_id: str) -> RunRow | None: ...

    def run_status(self, execution_id: str) -> tuple[RunStatus, Any, Any] | None:
        """(status, output, error) of a run by execution id."""
        ...

    def load_histories(self, execution_ids: Sequence[str]) -> dict[str, list[HistoryEvent]]:
        """Every run's events in ``seq`` order (an unknown id: an empty list)."""
        ...

    def undelivered(self, execution_ids: Sequence[str]) -> Inbox: ...

    def queued_tasks(self, task_ids: Sequence[str]) -> list[QueuedTask]:
        """The task-queue rows of these tasks (see ``store/taskqueue.py``), oldest first;
        unknown ids are left out. A run's owner reads its remote tasks' outcomes here, a
        claimer whether the run cancelled them."""
        ...

    # -- queries for users

    def get_run(self, workflow_id: str, *, with_events: bool = True) -> RunInfo | None:
        """A run by workflow id (or execution id)."""
        ...

    def find_cached_step(
        self, task_kind: str, source_hash: str, input_hash: str
    ) -> CachedStep | None:
        """The newest step recorded by :class:`CacheStep` with these three keys, in a run
        that still exists, or None (an indexed lookup: it runs before every cached step)."""
        ...

    def list_runs(
        self, *, statuses: Iterable[str] = (), kind: str | None = None, limit: int | None = None
    ) -> list[RunInfo]:
        """Runs newest first, without events."""
        ...

    def query_runs(self, query: RunQuery) -> RunPage:
        """A page of runs filtered, sorted and paged in the backend's own query (see
        ``store/runquery.py`` for the exact semantics every backend follows)."""
        ...

    def source_hashes(
        self, *, kind: str, statuses: Iterable[str] = ()
    ) -> list[tuple[str, str | None]]:
        """(workflow id, source hash it started with) of the runs of ``kind``, newest
        first, read from the run rows (no history)."""
        ...

    def promises(
        self, *, workflow_id: str | None = None, pending_only: bool = True
    ) -> list[PromiseInfo]:
        """Promises oldest first (pending ones of active runs by default)."""
        ...

    def logs(self, execution_id: str, *, since_ts: float | None = None) -> list[LogEntry]: ...

    def sql(
        self, query: str, params: list[Any] | None = None, *, write: bool = False
    ) -> pandas.DataFrame:
        """A query's result. Read-only (one SELECT, nothing changed) unless ``write``.

        Raises: InvalidInput (bad SQL, or not read-only without ``write``), FlovynError
        (pandas missing).
        """
        ...

    # -- the catalog: registered definitions

    def record_definitions(
        self,
        definitions: Sequence[NewDefinition],
        *,
        engine_id: str | None,
        queues: Sequence[str],
        now: float,
    ) -> None:
        """Record definitions an engine registered (one transaction).

        A (type, kind, source hash) seen before keeps its row and version (its
        ``last_registered_at`` moves to ``now``); a new source of a kind gets the next
        version. With ``engine_id``, the engine is recorded as serving each kind on
        ``queues`` (replacing what it said before about that kind).
        """
        ...

    def list_definitions(
        self,
        *,
        type: str | None = None,
        kind: str | None = None,
        all_versions: bool = False,
    ) -> list[DefinitionRow]:
        """Recorded definitions ordered by type, kind, then newest first; only the latest
        registered source of each kind unless ``all_versions``. Each row lists the
        engines (not marked stopped) that registered its kind."""
        ...

    # -- the catalog: queues

    def set_queue(self, queue: QueueRow, *, now: float) -> None:
        """Record a queue's limits (replacing what was recorded), then ring the work bell:
        raised limits may let waiting runs go."""
        ...

    def list_queues(self) -> list[QueueRow]:
        """Every queue with recorded limits, by name."""
        ...

    # -- the catalog: schedules

    def put_schedule(self, schedule: ScheduleRow) -> ScheduleRow:
        """Record a schedule (a new one as given; an existing one keeps its last slot, its
        pause and, when its cron is unchanged, its next slot), ring the work bell and
        return it as stored."""
        ...

    def list_schedules(self) -> list[ScheduleRow]:
        """Every schedule, by name."""
        ...

    def pause_schedule(self, name: str, paused: bool, *, next_fire: float | None) -> None:
        """Pause or resume a schedule. A ``next_fire`` becomes its next slot and the slots
        before it are forgotten (resuming skips the slots that passed while paused).

        Raises:
            InvalidInput: no such schedule.
        """
        ...

    def delete_schedule(self, name: str) -> None:
        """Raises: InvalidInput: no such schedule."""
        ...

    def fire_schedule(self, fire: FireSchedule) -> list[str] | None:
        """Fire slots of a schedule in one transaction (see :class:`FireSchedule`): None
        when its last slot is no longer ``expected_last_slot`` (another engine fired) or
        it is paused or gone; else the workflow ids of the runs started (runs whose id
        exists already are skipped). Rings the work bell when it started runs."""
        ...

    # -- holding the store (hints; a server database implements them trivially)

    def warm(self) -> None:
        """A use is expected soon: be ready for it (an embedded file opens now)."""
        ...

    def is_warm(self) -> bool:
        """The next use will not have to open or wait for the store."""
        ...

    @property
    def tenure(self) -> int:
        """Non-zero while this process holds the store exclusively, and the same value
        for as long as it holds it without a break: nobody else can commit meanwhile.
        Always 0 for a store shared by concurrent writers."""
        ...

    def release(self) -> None:
        """Let go of the store now (another process is about to use it)."""
        ...

    def stop_waiting(self) -> None:
        """Whoever waits for another process to let go of the store gives up at once with
        StoreLocked (the owner is stopping)."""
        ...

    def close(self) -> None: ...
