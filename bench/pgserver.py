"""A throwaway PostgreSQL server for the tests and the bench (no flovyn_nb import here;
``tests/pg_server.py`` re-exports it).

Debian's ``postgresql`` package puts its programs in ``/usr/lib/postgresql/<version>/bin``
(not on PATH); the newest version there is used. ``initdb`` makes a cluster in a temporary
folder, ``pg_ctl start`` serves it on a free port on 127.0.0.1 (and a Unix socket in the
same folder), ``stop()`` ends it and removes the folder. PostgreSQL refuses to run as root,
so as root every program runs as the ``postgres`` user through ``runuser``.

Durability is off by default (``fsync``, ``synchronous_commit``): a throwaway server never
survives a machine crash, and the tests must not wait for disks. The bench turns it on.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Self

__all__ = ["PgServer", "PgServerError", "bin_dir"]

PG_ROOT = Path("/usr/lib/postgresql")


class PgServerError(RuntimeError):
    """The server could not be started (the message says why and what to install)."""


def bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb``.

    Raises:
        PgServerError: PostgreSQL is not installed.
    """
    found = [d / "bin" for d in PG_ROOT.glob("*") if (d / "bin" / "initdb").exists()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)

    if not found:
        raise PgServerError(
            f"no PostgreSQL server programs under {PG_ROOT}; install them with "
            "`apt-get update && apt-get install -y postgresql` (or run `make unit`)"
        )
    return max(found, key=version)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PgServer:
    """One PostgreSQL cluster in a temporary folder, served on 127.0.0.1.

    Args:
        durable: keep ``fsync`` and ``synchronous_commit`` on (the bench's setting).
        max_connections: the server's connection limit.
    """

    def __init__(self, *, durable: bool = False, max_connections: int = 300) -> None:
        self.bin = bin_dir()
        self.durable = durable
        self.max_connections = max_connections
        self.folder = Path(tempfile.mkdtemp(prefix="flovyn-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = 0
        self._as_postgres = os.geteuid() == 0
        self.started = False

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` database (the superuser ``postgres``, no password)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url_for(self, database: str, *, schema: str | None = None) -> str:
        """The URL of another database on this server, optionally with ``search_path`` set
        to one schema (libpq's ``options``), so a store lives in that schema alone."""
        base = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        return base if schema is None else f"{base}?options=-csearch_path%3D{schema}"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)

    def start(self) -> PgServer:
        """initdb, then pg_ctl start (waits until the server accepts connections).

        Raises:
            PgServerError: a step failed (its output is in the message).
        """
        if self._as_postgres:
            shutil.chown(self.folder, user="postgres", group="postgres")
        init = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--no-sync", "--locale=C",
        )  # fmt: skip
        if init.returncode != 0:
            raise PgServerError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        settings = [
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.folder}",
            f"-c max_connections={self.max_connections}",
        ]
        if not self.durable:
            settings += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        for _ in range(5):  # the free port may be taken between the look and the bind
            self.port = _free_port()
            started = self._run(
                "pg_ctl", "start", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.log),
                "-o", " ".join([f"-p {self.port}", *settings]),
            )  # fmt: skip
            if started.returncode == 0:
                self.started = True
                return self
        tail = self.log.read_text()[-2000:] if self.log.exists() else ""
        raise PgServerError(f"pg_ctl start failed: {started.stderr.strip()} {tail}")

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.started:
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def create_schema(self) -> str:
        """A fresh, empty schema in the ``postgres`` database; returns a store URL that
        lives in it (every table, and the doorbell channel, is per schema)."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE SCHEMA {name}")
        return self.url_for("postgres", schema=name)

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = "db_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url, autocommit=True) as con:
            con.execute(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url_for(name)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            self.stop()
