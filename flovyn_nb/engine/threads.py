"""Every hop between the engine's thread and the others, in one place.

The engine runs an anyio loop in a daemon thread of its own (:class:`EngineThread`). Work
crosses that boundary only through this module:

- into the loop: calls from the kernel, the client and tests (:meth:`EngineThread.call`,
  blocking), from widget button handlers (:meth:`EngineThread.soon`, a future), and from
  worker threads that log (:meth:`EngineThread.spawn`);
- out of the loop: ``def`` tasks (:class:`TaskThreads`, an executor of the engine's own),
  ``def`` workflows and blocking store calls (:func:`offload`);
- back from a ``def`` workflow's thread into the loop (:func:`blocking`,
  :func:`blocking_sync`: anyio's portal of that worker thread).

A blocking call made from the loop's own thread would wait for itself for ever; it raises
:class:`~flovyn_nb.errors.EngineError` instead (the habit of DBOS's ``_event_loop.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.abc import TaskGroup
from anyio.from_thread import BlockingPortal

from flovyn_nb.errors import EngineError, EngineStopped

T = TypeVar("T")

IN_LOOP = (
    "this call blocks and cannot be made from workflow code; inside a workflow use the ctx "
    "methods (ctx.schedule_workflow, ...)"
)


class Status:
    """The task status the loop's main coroutine reports its start to (it runs outside a
    task group)."""

    def __init__(self, on_started: Callable[[], None]) -> None:
        self._on_started = on_started

    def started(self, value: object = None) -> None:
        self._on_started()


Main = Callable[[Status], Awaitable[None]]


class EngineThread:
    """The engine's thread, its loop, and the calls that cross into it.

    Args:
        name: the thread's name.
        on_died: called in the dying thread with the cause (or None) when the loop ends
            without :meth:`stop_serving` having been called first.
    """

    def __init__(self, name: str, on_died: Callable[[BaseException | None], None]) -> None:
        self._name = name
        self._on_died = on_died
        self.portal: BlockingPortal | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.tg: TaskGroup | None = None  # the engine's task group, once it serves calls
        self._host: threading.Thread | None = None  # the thread the loop runs in
        self._loop_thread: threading.Thread | None = None
        self.stopping = False
        # calls from other threads not answered yet: failed if the loop dies under them
        self._calls: set[Future[Any]] = set()
        self._calls_lock = threading.Lock()
        self.failure: EngineStopped | None = None  # why the loop stopped on its own, if it did

    @property
    def running(self) -> bool:
        return self.portal is not None

    @property
    def alive(self) -> bool:
        """Whether the thread was started and not let go of (see :meth:`detach`)."""
        return self._host is not None

    def in_loop(self) -> bool:
        """Whether the caller is the loop's own thread."""
        return threading.current_thread() is self._loop_thread

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, main: Main) -> None:
        """Start the thread and run ``main`` in its loop; returns once ``main`` reported
        its start (raises what stopped it before that)."""
        self.failure = None
        self.stopping = False
        started: Future[BlockingPortal] = Future()
        self._host = threading.Thread(
            target=self._run, args=(main, started), name=self._name, daemon=True
        )
        self._host.start()
        started.result()  # _serve has set self.portal

    def serve(self, tg: TaskGroup) -> None:
        """From the loop: calls from other threads are taken from now on, into ``tg``."""
        self._loop_thread = threading.current_thread()
        self.tg = tg
        self.loop = asyncio.get_running_loop()  # anyio's asyncio backend

    def call_portal(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn`` on the loop through the portal and wait (stop and flush: these must
        work while the engine's task group is closing)."""
        portal = self.portal
        if portal is None:
            raise RuntimeError("the engine's loop is not running")
        return portal.call(fn)

    def detach(self) -> threading.Thread | None:
        """Forget the thread (the engine tears down); returns it, or None if done already."""
        self.portal = None
        host, self._host = self._host, None
        return host

    @staticmethod
    def join(host: threading.Thread) -> None:
        if host is not threading.current_thread() and host.ident is not None:
            host.join()

    def _run(self, main: Main, started: Future[BlockingPortal]) -> None:
        """The engine's thread: runs the loop until stopped, or until it dies, and says so."""
        cause: BaseException | None = None
        try:
            anyio.run(self._serve, main, started)
        except BaseException as exc:
            cause = exc
        if not started.done():
            started.set_exception(cause or EngineError("the engine's loop ended while starting"))
        elif not self.stopping:
            self._on_died(cause)

    async def _serve(self, main: Main, started: Future[BlockingPortal]) -> None:
        async with BlockingPortal() as portal:

            def on_started() -> None:
                self.portal = portal
                started.set_result(portal)

            try:
                await main(Status(on_started))
            except BaseException as exc:
                if started.done():
                    raise
                started.set_exception(exc)
                return
            # Stopped: calls that came in through the portal meanwhile have nobody left
            # to serve them (the writer is gone).
            await portal.stop(cancel_remaining=True)

    def fail_calls(self, failure: EngineStopped) -> None:
        """The loop died: every call in flight raises ``failure``, and so will later ones."""
        self.failure = failure
        with self._calls_lock:
            calls, self._calls = self._calls, set()
        for future in calls:
            with contextlib.suppress(Exception):  # answered meanwhile
                future.set_exception(failure)

    def not_running(self) -> EngineError:
        if self.failure is not None:
            return self.failure
        return EngineError("the flovyn engine is not running; call flovyn_nb.start() first")

    # -- calls from other threads --------------------------------------------------------

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn(*args)`` on the loop and wait for its outcome (never from the loop)."""
        if self.in_loop():
            raise EngineError(IN_LOOP)
        return self.soon(fn, *args).result()

    def soon(self, fn: Callable[..., Awaitable[T]], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in the engine's task group, from another thread; the future
        holds its outcome. One hop to the loop (anyio's portal makes two: it waits for the
        task to be spawned, then for its result), which is most of a call's cost."""
        loop = self.loop
        if self.portal is None or loop is None:
            raise self.not_running()
        future: Future[T] = Future()
        with self._calls_lock:
            self._calls.add(future)
        future.add_done_callback(self._answered)
        try:
            loop.call_soon_threadsafe(self._spawn, future, fn, args)
        except RuntimeError:  # the loop is closed
            self._answered(future)
            if self.failure is not None:
                raise self.failure from None
            raise EngineError("the flovyn engine stopped; call flovyn_nb.start() again") from None
        if self.failure is not None:  # it died meanwhile: nobody will take the call
            with contextlib.suppress(Exception):
                future.set_exception(self.failure)
        return future

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` on the loop from any thread, without waiting (its outcome
        is its own business); nothing happens once the engine has stopped."""
        portal = self.portal
        if portal is None:
            return
        with contextlib.suppress(Exception):
            portal.start_task_soon(fn, *args)

    def _answered(self, future: Future[Any]) -> None:
        with self._calls_lock:
            self._calls.discard(future)

    def _spawn(
        self, future: Future[T], fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]
    ) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            assert self.tg is not None
            self.tg.start_soon(self._fulfil, future, fn, args)
        except RuntimeError:  # the task group has closed: the engine is stopping
            future.set_exception(EngineError("the flovyn engine stopped before the call ran"))

    async def _fulfil(
        self, future: Future[T], fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]
    ) -> None:
        try:
            result = await fn(*args)
        except anyio.get_cancelled_exc_class():
            if self.stopping:  # otherwise the loop is dying: the engine says why
                future.set_exception(EngineError("the flovyn engine stopped before the call ended"))
            raise
        except BaseException as exc:  # the caller's thread raises it
            future.set_exception(exc)
        else:
            future.set_result(result)


# -- out of the loop -------------------------------------------------------------------------


class TaskThreads:
    """Threads for ``def`` tasks. (``anyio.to_thread`` costs about three times as much per
    call on the loop; a timed-out or cancelled call is abandoned the same way.)"""

    def __init__(self, max_workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flovyn-task")

    def submit(self, call: Callable[[], T]) -> asyncio.Future[T]:
        """From the loop: run ``call`` in a task thread; await the returned future."""
        return asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        """Let go of the task threads (abandoned calls finish on their own)."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def offload(
    fn: Callable[..., T],
    *args: Any,
    limiter: anyio.CapacityLimiter | None = None,
    abandon_on_cancel: bool = False,
) -> Awaitable[T]:
    """From the loop: run a blocking call (a store call, a ``def`` workflow) in a worker
    thread; await the result. (A plain function: no coroutine of its own per call.)"""
    return anyio.to_thread.run_sync(fn, *args, limiter=limiter, abandon_on_cancel=abandon_on_cancel)


def awaitable_in_thread(fn: Callable[[], T]) -> Generator[Any, None, T]:
    """``__await__`` for a blocking wait, from any event loop (a notebook's): the wait
    runs in a worker thread of that loop and is abandoned if the awaiting task is cancelled."""
    return anyio.to_thread.run_sync(fn, abandon_on_cancel=True).__await__()


# -- from a ``def`` workflow's thread back into the loop ---------------------------------------


def blocking(fn: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
    """From a ``def`` workflow's worker thread: run ``fn(*args)`` on the loop and wait."""
    return anyio.from_thread.run(fn, *args)


def blocking_sync(fn: Callable[..., T], *args: Any) -> T:
    """From a ``def`` workflow's worker thread: call ``fn(*args)`` on the loop and wait."""
    return anyio.from_thread.run_sync(fn, *args)


def apart(fn: Callable[[], T], timeout: float) -> tuple[bool, T | None, BaseException | None]:
    """Call ``fn`` in a daemon thread of its own, with no event loop (the caller's thread
    may run one: a notebook's), and wait up to ``timeout`` seconds.

    Returns (finished, value, error); a call still running at the timeout is abandoned.
    """
    result: list[tuple[T | None, BaseException | None]] = []

    def target() -> None:
        try:
            result.append((fn(), None))
        except BaseException as exc:
            result.append((None, exc))

    thread = threading.Thread(target=target, name="flovyn-apart", daemon=True)
    thread.start()
    thread.join(timeout)
    if not result:
        return False, None, None
    return True, *result[0]
