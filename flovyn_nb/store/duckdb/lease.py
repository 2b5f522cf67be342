"""The lease on the store file: open on demand, release when idle or when knocked.

DuckDB lets one process hold a database file; every other process, even a reader, is
refused while it does. So a process holds the file only while it is busy:

- it opens the file on first use and closes it after ``idle_release`` seconds without use;
- a process that finds the file locked creates ``<store>.knock`` and retries with jittered
  backoff; the holder sees the knock between transactions (or from its idle watcher),
  closes and stays away for a moment, so the knocker gets in within tens of milliseconds;
- after ``lock_timeout`` the waiter gives up with :class:`StoreLocked`, naming the PID.

Between flovyn processes the turn is taken with an ``flock`` on ``<store>.lock``, held
from before ``duckdb.connect`` until after ``close``: DuckDB (2.0) reads the file's
headers *before* it takes its own lock, so a process that connects while the holder is
still closing (writing its last checkpoint) can start from the previous checkpoint and
later overwrite the holder's last commits. A process only tries DuckDB's lock once it
holds ours, so it never reads a file in the middle of a close. (Processes that open the
file with plain DuckDB do not take it; they still meet DuckDB's own lock.)

Closing does not checkpoint the file: DuckDB's own checkpoints are off, and a process
that lets go of the file folds the WAL in only when it has grown past a threshold, behind
a copy that the next open restores if the checkpoint was interrupted (``checkpoint.py``).

One connection per process and file, owned by this object; threads take turns on it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import random
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import duckdb

from flovyn_nb.errors import StoreError, StoreLocked
from flovyn_nb.store.duckdb import checkpoint
from flovyn_nb.store.duckdb.bell import RING, Bell
from flovyn_nb.store.duckdb.checkpoint import Backup

T = TypeVar("T")

_PID = re.compile(r"PID (\d+)")
_LOCK_WORDS = ("Could not set lock", "Conflicting lock")
# After a knock, the holder stays away this long so the knocker gets in first.
KNOCK_YIELD = 0.03
# A knock file older than this was left by a waiter that died; it is ignored and removed.
KNOCK_STALE = 2.0


def _one_line(exc: BaseException) -> str:
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return any(word in text for word in _LOCK_WORDS)


def holder_pid(exc: BaseException) -> int | None:
    match = _PID.search(str(exc))
    return int(match.group(1)) if match else None


Opener = Callable[[duckdb.DuckDBPyConnection], None]


class TurnLock:
    """This process's turn at a store file: an exclusive ``flock`` on ``<store>.lock``.

    One per lock file and process, shared by every :class:`Lease` of the process on that
    file (they share one DuckDB instance too): taken by the first to open, given back
    by the last to close. The holder writes its PID into the file for error messages,
    and, when DuckDB refused it because a plain DuckDB client holds the file, that
    client's PID after it: a waiter that never gets a turn still names the real holder.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.Lock()
        self._fd: int | None = None
        self._holders = 0
        # After giving the file up to a knocker, this process (every lease of it on this
        # file) stays away until then, so the knocker gets in first.
        self.stay_away_until = 0.0

    def acquire(self) -> bool:
        """Take a turn without waiting; False while another process has one."""
        with self._mutex:
            if self._holders == 0:
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError:
                    fd = -1  # cannot create it (read-only folder): rely on DuckDB's lock
                if fd >= 0:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError:
                        os.close(fd)
                        return False
                    # Keep the plain DuckDB client the last turn met (while it lives):
                    # until this turn meets it too, a waiter must still name it, not us.
                    self._write(fd, self._live_blocker(fd))
                self._fd = fd
            self._holders += 1
            return True

    def note_blocker(self, pid: int | None) -> None:
        """DuckDB said that ``pid`` (not a flovyn process taking turns) holds the file;
        None: this process opened it (nobody blocks it any more)."""
        with self._mutex:
            if self._fd is not None and self._fd >= 0:
                self._write(self._fd, pid)

    @staticmethod
    def _write(fd: int, blocker: int | None) -> None:
        # One fixed-width write, never a truncate: a waiter reading the file meanwhile
        # sees the old or the new names, never an empty file or a mix of two.
        text = f"{os.getpid():<{_PID_WIDTH}} {blocker or '':<{_PID_WIDTH}}"
        with contextlib.suppress(OSError):
            os.pwrite(fd, text.encode(), 0)

    @staticmethod
    def _live_blocker(fd: int) -> int | None:
        try:
            words = os.pread(fd, 2 * _PID_WIDTH + 1, 0).split()
        except OSError:
            return None
        blocker = int(words[1]) if len(words) > 1 and words[1].isdigit() else None
        return blocker if blocker is not None and _alive(blocker) else None

    def release(self) -> None:
        with self._mutex:
            if self._holders == 0:
                return
            self._holders -= 1
            if self._holders == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                if fd >= 0:
                    os.close(fd)  # closing the only descriptor releases the flock

    def holder(self) -> int | None:
        """Who keeps the file from this process, if known: the plain DuckDB client that
        the last turn met, else the process whose turn it is (never this process)."""
        try:
            words = self.path.read_text().split()
        except OSError:
            return None
        pids = [int(word) for word in words[:2] if word.isdigit()]
        for pid in reversed(pids):
            if pid != os.getpid():
                return pid
        return None


_PID_WIDTH = 10  # digits a PID is padded to in the turn file (Linux allows up to 7)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


_TURNS: dict[Path, TurnLock] = {}
_TURNS_MUTEX = threading.Lock()


def turn_lock(path: Path) -> TurnLock:
    with _TURNS_MUTEX:
        lock = _TURNS.get(path)
        if lock is None:
            lock = _TURNS[path] = TurnLock(path)
        return lock


def _forget_turns_in_child() -> None:
    """A forked child does not hold its parent's turns (closing its copies of the
    descriptors leaves the parent's flocks in place)."""
    for lock in _TURNS.values():
        fd, lock._fd, lock._holders = lock._fd, None, 0
        if fd is not None and fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


os.register_at_fork(after_in_child=_forget_turns_in_child)


class Lease:
    """Process-wide, thread-safe access to one DuckDB file (see module docstring)."""

    def __init__(
        self,
        path: Path,
        *,
        lock_timeout: float = 30.0,
        idle_release: float = 0.1,
        on_open: Opener | None = None,
    ) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.idle_release = idle_release
        self.knock_path = Path(f"{path}.knock")
        self.turn = turn_lock(Path(f"{path}.lock"))
        self.bell = Bell(Path(f"{path}.bell"))
        self._on_open = on_open
        self._lock = threading.RLock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._last_used = 0.0
        self._watcher: threading.Thread | None = None
        self._closed = False
        self._stopping = False
        self._abandoned = False
        self.opens = 0  # how often the file was opened (for tests and benchmarks)
        # Which opening of the file this process holds now (its ``opens`` count), 0 when
        # closed. One read says both whether the file is held and whether it was let go
        # since another read: no other process can have committed in between.
        self.tenure = 0
        # One line per damaged store this lease found and restored (see checkpoint.py).
        self.notices: list[str] = []
        self.checkpoints = 0  # protected checkpoints run by this lease (tests, benchmarks)
        _LEASES.add(self)

    # -- the connection ---------------------------------------------------------------

    @contextlib.contextmanager
    def connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Hold the file for the duration of the block (re-entrant within a thread)."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the store {self.path} was closed", path=str(self.path))
            if self._con is not None and self._knocked():
                self._release(stay_away=True)
            con = self._con or self._open()
            try:
                yield con
            finally:
                self._last_used = time.monotonic()

    def transaction(
        self,
        fn: Callable[[duckdb.DuckDBPyConnection], T],
        *,
        ring: bool = True,
        mark: bytes = RING,
    ) -> T:
        """Run ``fn`` in one transaction; commit, then ring the doorbell.

        The bell rings before the file can be let go: a process that holds the file knows
        that every commit of the others before it has rung (engines rely on it to decide
        promise timeouts without asking the store).
        """
        with self.connection() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                result = fn(con)
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                raise
            if ring:
                self.bell.ring(mark)
            self._checkpoint_if_over(con, checkpoint.MAX_THRESHOLD)
        return result

    def autocommit(self, fn: Callable[[duckdb.DuckDBPyConnection], T], *, mark: bytes = RING) -> T:
        """Run one statement in its own implicit transaction (cheaper than BEGIN/COMMIT)."""
        with self.connection() as con:
            result = fn(con)
            self.bell.ring(mark)
            self._checkpoint_if_over(con, checkpoint.MAX_THRESHOLD)
        return result

    def read(self, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        with self.connection() as con:
            return fn(con)

    def warm(self) -> None:
        """Have the file open for a use expected within ``idle_release`` (open it, or put
        off its idle release)."""
        with self.connection():
            pass

    def abandon_waits(self) -> None:
        """Whoever waits for another process to let go of the file (now or later) gives up
        at once with StoreLocked: its owner is stopping. (No lock: the waiter holds it.)"""
        self._abandoned = True

    def checkpoint(self, con: duckdb.DuckDBPyConnection | None = None) -> None:
        """Fold the WAL into the file now, protected by a copy (see checkpoint.py).

        ``con``: this lease's open connection, when the caller is already using it.
        """
        if con is not None:
            self._checkpoint(con)
            return
        with self.connection() as held:
            self._checkpoint(held)

    def release(self) -> None:
        """Close the file now (it reopens on the next use)."""
        with self._lock:
            self._release(stay_away=False)

    def close(self) -> None:
        with self._lock:
            self._release(stay_away=False)
            self._closed = True

    def shutdown(self) -> None:
        """At interpreter exit: stop the watcher thread first, then close the file here.

        A daemon thread frozen by interpreter teardown in the middle of closing the
        connection would leave it half-alive (duckdb then reports leaked objects).
        """
        self._stopping = True
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=1.0)
        self.release()

    @property
    def is_open(self) -> bool:
        return self._con is not None

    def ready(self) -> bool:
        """Open and nobody knocking: the next use will not have to (re)open the file."""
        return self._con is not None and not self._knocked()

    # -- internals --------------------------------------------------------------------

    def _knocked(self) -> bool:
        """A fresh knock file means a waiter; a stale one (its waiter died) is removed."""
        try:
            age = time.time() - self.knock_path.stat().st_mtime
        except OSError:
            return False
        if age > KNOCK_STALE:
            with contextlib.suppress(OSError):
                self.knock_path.unlink()
            return False
        return True

    def _open(self) -> duckdb.DuckDBPyConnection:
        wait = self.turn.stay_away_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        deadline = time.monotonic() + self.lock_timeout
        knocked = False
        seen: int | None = None  # the last plain DuckDB client that DuckDB named
        try:
            while True:
                pid: int | None
                if self.turn.acquire():
                    try:
                        con = self._connect()
                        self.turn.note_blocker(None)
                        break
                    except duckdb.Error as exc:
                        pid = holder_pid(exc)  # a process that opened it with plain DuckDB
                        if pid is not None:
                            self.turn.note_blocker(pid)
                        self.turn.release()
                        if not is_lock_error(exc):
                            raise StoreError(
                                f"cannot open the store {self.path}: {_one_line(exc)}",
                                path=str(self.path),
                            ) from None
                        seen = pid or seen
                    except BaseException:
                        self.turn.release()
                        raise
                else:
                    pid = None  # another flovyn process has its turn
                if time.monotonic() >= deadline or self._abandoned:
                    # Whoever DuckDB named holds the file; a flovyn process whose turn it is
                    # may only be waiting for that same holder (then it noted it).
                    pid = pid or seen or self.turn.holder()
                    raise StoreLocked(
                        f"the store {self.path} is held by another process"
                        + (f" (PID {pid})" if pid else "")
                        + (
                            "; stopped waiting for it"
                            if self._abandoned
                            else f" and was not released within {self.lock_timeout:g} s; "
                            "stop that process or raise lock_timeout"
                        ),
                        path=str(self.path),
                        holder_pid=pid,
                    )
                with contextlib.suppress(OSError):
                    self.knock_path.touch()  # refreshes the knock's age each try
                knocked = True
                time.sleep(random.uniform(0.002, 0.006))
        finally:
            if knocked:
                with contextlib.suppress(OSError):
                    self.knock_path.unlink()
        self._con = con
        self.opens += 1
        self.tenure = self.opens
        try:
            if self._on_open is not None:
                self._on_open(con)
        except BaseException:
            self._release(stay_away=False)
            raise
        self._last_used = time.monotonic()
        self._start_watcher()
        return con

    def _connect(self) -> duckdb.DuckDBPyConnection:
        """Open the file (this process has its turn) with DuckDB's own checkpoints off;
        after an interrupted checkpoint, check the file and restore its copy if needed."""
        backup = Backup(self.path)
        meta = backup.pending()
        try:
            con = duckdb.connect(str(self.path))
        except duckdb.Error as exc:
            if meta is None or is_lock_error(exc):
                raise
            return self._restore(backup, meta, f"it does not open: {_one_line(exc)}")
        try:
            checkpoint.configure(con)
            if meta is not None:
                try:
                    checkpoint.verify(con)
                except duckdb.Error as exc:
                    with contextlib.suppress(duckdb.Error):
                        con.close()
                    return self._restore(backup, meta, f"it does not read back: {_one_line(exc)}")
                backup.discard()  # the checkpoint got far enough: the file reads back whole
            elif backup.db.exists():
                backup.discard()  # a copy that was never finished: the file was not touched
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                con.close()
            raise
        return con

    def _restore(
        self, backup: Backup, meta: dict[str, object], reason: str
    ) -> duckdb.DuckDBPyConnection:
        """Put back the copy taken before the interrupted checkpoint, open it, say so."""
        when = meta.get("taken_at")
        stamp = (
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
            if isinstance(when, (int, float))
            else "an unknown time"
        )
        what = (
            f"the store {self.path} was damaged by a checkpoint that was interrupted "
            f"(begun {stamp} by PID {meta.get('pid')}): {reason}"
        )
        try:
            checkpoint.restore(self.path, backup, meta)
            con = duckdb.connect(str(self.path))
        except (OSError, duckdb.Error) as exc:
            text = exc.strerror if isinstance(exc, OSError) else _one_line(exc)
            raise StoreError(
                f"{what}; restoring the copy taken before it failed too ({text}); the copy "
                f"is kept in {backup.db} and {backup.wal}",
                path=str(self.path),
            ) from None
        try:
            checkpoint.configure(con)
            checkpoint.verify(con)
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.close()
            raise StoreError(
                f"{what}; the copy taken before it does not read back either "
                f"({_one_line(exc)}); it is kept in {backup.db} and {backup.wal}",
                path=str(self.path),
            ) from None
        backup.discard()
        notice = (
            f"{what}; restored the copy taken just before that checkpoint, which holds "
            "every commit made before it"
        )
        self.notices.append(notice)
        with contextlib.suppress(OSError), open(f"{self.path}.recovery.log", "a") as log:
            log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} PID {os.getpid()}: {notice}\n")
        return con

    def _checkpoint(self, con: duckdb.DuckDBPyConnection) -> None:
        checkpoint.protected_checkpoint(con, self.path)
        self.checkpoints += 1

    def _checkpoint_if_over(self, con: duckdb.DuckDBPyConnection, threshold: int) -> None:
        """Checkpoint when the WAL has grown past ``threshold`` bytes. A failed one leaves
        the WAL (or, if it got as far as the file, its copy) for the next open."""
        if checkpoint.wal_size(self.path) < threshold:
            return
        with contextlib.suppress(duckdb.Error, OSError):
            self._checkpoint(con)

    def _release(self, *, stay_away: bool) -> None:
        con, self._con = self._con, None
        self.tenure = 0
        if con is not None:
            try:
                # Checkpoint here, not in DuckDB's close (see checkpoint.py).
                self._checkpoint_if_over(con, checkpoint.checkpoint_threshold(self.path))
                with contextlib.suppress(duckdb.Error):
                    con.close()
            finally:
                self.turn.release()  # only once the file is closed, checkpoint and all
        if con is not None and (stay_away or self._knocked()):
            # Someone is waiting: let them in before this process (through this lease or
            # a new one, e.g. after close()) takes the file again.
            self.turn.stay_away_until = time.monotonic() + KNOCK_YIELD

    def _start_watcher(self) -> None:
        if self._watcher is not None and self._watcher.is_alive():
            return
        self._watcher = threading.Thread(
            target=self._watch, name=f"flovyn-store-lease:{self.path.name}", daemon=True
        )
        self._watcher.start()

    def _watch(self) -> None:
        """Close the file after idle_release, or at once when another process knocks."""
        while not self._stopping:
            time.sleep(min(0.01, max(self.idle_release / 4, 0.002)))
            if not self._lock.acquire(blocking=False):
                continue  # in use: the next user checks for knocks itself
            try:
                if self._con is None:
                    self._watcher = None
                    return
                knocked = self._knocked()
                if knocked or time.monotonic() - self._last_used >= self.idle_release:
                    self._release(stay_away=knocked)
            finally:
                self._lock.release()


_LEASES: weakref.WeakSet[Lease] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    # Close files before interpreter shutdown, not from a daemon thread during it.
    for lease in list(_LEASES):
        with contextlib.suppress(Exception):
            lease.shutdown()
    # duckdb's bindings report (harmless) "leaked" objects when connections or results
    # are still referenced at interpreter teardown; collect them while duckdb still exists.
    import gc

    gc.collect()
