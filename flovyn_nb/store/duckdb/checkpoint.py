"""Checkpoints on purpose, each one protected by a copy it can be rolled back to.

DuckDB (2.0) checkpoints a file on every close by default, and a process killed in the
middle of a checkpoint can leave the file unreadable ("Corrupt database file: computed
checksum … in block at location 12288"; plain DuckDB reproduces it with connect / insert /
close loops and ``kill -9``). A flovyn store closes often (idle release, knocks, every
CLI call), so it must not checkpoint on close. Instead:

- every connection turns the automatic checkpoints off (``disable_checkpoint_on_shutdown``
  and a ``wal_autocheckpoint`` threshold nothing reaches), so commits only append to the
  WAL, which DuckDB replays in memory on the next open without writing the file (measured
  on 2.0.1: a 96 MB WAL was replayed and the file left byte-identical);
- the WAL is folded into the file by :func:`protected_checkpoint` when it grows past a
  threshold, while this process holds both the turn lock and DuckDB's lock, so nobody
  else can write in between: the file and the WAL are first copied to
  ``<store>.ckpt-db`` / ``<store>.ckpt-wal`` (fsynced, then a manifest
  ``<store>.ckpt.json`` written atomically), then ``CHECKPOINT`` runs, then the copy is
  removed;
- a manifest left behind means a checkpoint was interrupted: the next process to open
  the store checks the file (:func:`verify`) and restores the copy when it does not read
  back (:func:`restore`). The copy holds everything that was committed before the
  checkpoint began, so nothing durable is lost.

The WAL's size decides when to checkpoint: replaying it costs every open ~0.1 ms per
commit it holds, and each checkpoint copies the whole file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

__all__ = [
    "Backup",
    "checkpoint_threshold",
    "configure",
    "protected_checkpoint",
    "restore",
    "verify",
    "wal_path",
    "wal_size",
]

# A WAL under the threshold is left for the next open to replay (~0.1 ms per commit it
# holds, ~100 step commits per 64 KiB); above it, the process that lets go of the file
# checkpoints first. The threshold grows with the file (each checkpoint copies it): 1/32
# of it, between these bounds.
MIN_THRESHOLD = 64 * 1024
RELEASE_MAX_THRESHOLD = 1024 * 1024
# A process that holds the file for long checkpoints as soon as its WAL passes this,
# without letting go.
MAX_THRESHOLD = 8 * 1024 * 1024
# Larger than any WAL the store lets grow: DuckDB itself never checkpoints on a commit.
NEVER = "1000GB"


def wal_path(path: Path) -> Path:
    return Path(f"{path}.wal")


def wal_size(path: Path) -> int:
    try:
        return os.stat(f"{path}.wal").st_size
    except OSError:
        return 0


def checkpoint_threshold(path: Path) -> int:
    """WAL bytes above which a closing process checkpoints: 1/32 of the file, within
    [MIN_THRESHOLD, RELEASE_MAX_THRESHOLD] (``FLOVYN_NB_CHECKPOINT_WAL`` sets it outright)."""
    text = os.environ.get("FLOVYN_NB_CHECKPOINT_WAL")
    if text and text.isdigit():
        return int(text)
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    return min(RELEASE_MAX_THRESHOLD, max(MIN_THRESHOLD, size // 32))


def configure(con: duckdb.DuckDBPyConnection) -> None:
    """Turn DuckDB's own checkpoints off for this database instance (see module doc)."""
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute(f"SET wal_autocheckpoint = '{NEVER}'")


@dataclass(frozen=True)
class Backup:
    """The copy taken before a checkpoint: ``<store>.ckpt-db``, ``.ckpt-wal``, ``.ckpt.json``."""

    store: Path

    @property
    def db(self) -> Path:
        return Path(f"{self.store}.ckpt-db")

    @property
    def wal(self) -> Path:
        return Path(f"{self.store}.ckpt-wal")

    @property
    def manifest(self) -> Path:
        return Path(f"{self.store}.ckpt.json")

    def pending(self) -> dict[str, object] | None:
        """The manifest of a checkpoint that did not finish, if it is complete and its
        copies are all there (else None: no copy was finished, the file was not touched)."""
        try:
            meta = json.loads(self.manifest.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(meta, dict):
            return None
        try:
            if os.stat(self.db).st_size != meta.get("db_size"):
                return None
            wal = meta.get("wal_size")
            if wal is not None and os.stat(self.wal).st_size != wal:
                return None
        except OSError:
            return None
        return meta

    def discard(self) -> None:
        # The manifest goes first: without it the copies are only leftovers.
        for path in (self.manifest, self.db, self.wal):
            with contextlib.suppress(OSError):
                path.unlink()

    def take(self) -> dict[str, object]:
        """Copy the file and its WAL, fsync them, then write the manifest atomically."""
        self.discard()
        wal = wal_path(self.store)
        meta: dict[str, object] = {
            "db_size": _copy(self.store, self.db),
            "wal_size": _copy(wal, self.wal) if wal.exists() else None,
            "taken_at": time.time(),
            "pid": os.getpid(),
        }
        _write_atomically(self.manifest, json.dumps(meta).encode())
        return meta


def _copy(src: Path, dst: Path) -> int:
    shutil.copyfile(src, dst)  # copy_file_range/sendfile: in the kernel, page cache to page cache
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = Path(f"{path}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def protected_checkpoint(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Fold the WAL into the file, with a copy to roll back to if this is interrupted.

    The caller holds the file (turn lock and DuckDB's lock) and no transaction is open.
    """
    backup = Backup(path)
    backup.take()
    con.execute("CHECKPOINT")
    backup.discard()


def verify(con: duckdb.DuckDBPyConnection) -> None:
    """Read every column of every table, so each block's checksum is checked.

    Raises:
        duckdb.Error: a block does not read back.
    """
    tables = con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_type = 'BASE TABLE'"
    ).fetchall()
    for (table,) in tables:
        con.execute(f'SELECT count(*), max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM "{table}"')
        con.fetchall()


def restore(path: Path, backup: Backup, meta: dict[str, object]) -> None:
    """Put the copy back in place of the file and its WAL (each via a temp file and a
    rename, the WAL first; the copy is kept until the store has opened from it)."""
    wal = wal_path(path)
    if meta.get("wal_size") is None:
        with contextlib.suppress(FileNotFoundError):
            wal.unlink()
    else:
        _copy(backup.wal, Path(f"{wal}.restoring"))
        os.replace(f"{wal}.restoring", wal)
    _copy(backup.db, Path(f"{path}.restoring"))
    os.replace(f"{path}.restoring", path)
    _fsync_dir(path.parent)
