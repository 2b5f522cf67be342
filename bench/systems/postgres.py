"""flovyn_nb and DBOS Transact on the *same* PostgreSQL server (``flovyn_nb@pg``,
``dbos@pg``).

``bench/run.py`` starts one throwaway server (``bench/pgserver.py``, durable: fsync and
synchronous commit on, as a real server) and hands its URL to every child in
``FLOVYN_BENCH_PG``. Each workload's store is a fresh database; its URL is written into the
store "file" of the workload's folder, so a worker process (``bench/worker.py``, which
only gets that path) finds the same database.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from bench.pg_probe import Probe
from bench.systems.dbos import DBOSConfig, DBOSSystem
from bench.systems.flovyn import FlovynSystem

ENV = "FLOVYN_BENCH_PG"


def server_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        raise RuntimeError(f"{ENV} is not set: run the PostgreSQL systems through bench/run.py")
    return url


def server_facts(url: str) -> dict[str, Any]:
    """The server's version and the settings that shape the figures, and the client
    libraries' versions (for the report)."""
    from importlib.metadata import version

    with psycopg.connect(url, autocommit=True) as con:
        shown = {
            name: str(row[0])
            for name in ("server_version", "fsync", "synchronous_commit", "shared_buffers")
            if (row := con.execute(f"SHOW {name}").fetchone()) is not None
        }
    return {**shown, "psycopg": psycopg.__version__, "dbos": version("dbos")}


def fresh_database(store: Path) -> str:
    """A new database on the bench's server; its URL is also written to ``store``."""
    base = server_url()
    name = "bench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(base, autocommit=True) as con:
        con.execute(f"CREATE DATABASE {name}")
    url = base.rsplit("/", 1)[0] + "/" + name
    store.write_text(url)
    return url


def url_of(store: Path) -> str:
    return store.read_text().strip()


def pg_commit_floor(samples: int) -> list[float]:
    """Seconds per single-row autocommit INSERT on the server (the floor of a step).

    Into an ordinary table: a temporary (or unlogged) one writes no WAL, so its commit
    waits for no flush and is no floor for a durable write."""
    table = "floor_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url(), autocommit=True) as con:
        con.execute(f"CREATE TABLE {table} (id INTEGER, payload TEXT)")
        try:
            timings = []
            for i in range(samples):
                started = time.perf_counter()
                con.execute(f"INSERT INTO {table} VALUES (%s, %s)", [i, "x"])
                timings.append(time.perf_counter() - started)
            return timings
        finally:
            con.execute(f"DROP TABLE {table}")


class FlovynPgSystem(FlovynSystem):
    name: str = "flovyn_nb@pg"
    store_name: str = "store.url"

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "store": "postgresql", "psycopg": psycopg.__version__}

    def __init__(self) -> None:
        super().__init__()
        # Where a resolve -> resume spends its time (resolve_resume's details).
        self.probe = Probe()

    def open(self, store: Path) -> None:
        self.probe.install()
        super().open(fresh_database(store))  # type: ignore[arg-type]

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.probe.uninstall()

    def stats(self) -> dict[str, Any]:
        from flovyn_nb import client

        engine = client.running_engine()
        return {} if engine is None else {"commits": engine.writer.commits}

    def commit_floor(self, path: Path, samples: int) -> list[float]:
        return pg_commit_floor(samples)

    def remote_resolver(self, store: Path) -> Callable[[str], None]:
        return super().remote_resolver(url_of(store))  # type: ignore[arg-type]


class DBOSPgSystem(DBOSSystem):
    store_name: str = "store.url"

    def __init__(self) -> None:
        super().__init__(None)
        self.name = "dbos@pg"
        # On PostgreSQL DBOS learns of a message by LISTEN/NOTIFY, not by polling.
        self.wakeup_interval = 0.0
        self.slow_wakeup = False

    def settings(self) -> dict[str, Any]:
        base = super().settings()
        base.pop("sqlite", None)
        return {**base, "store": "postgresql", "psycopg": psycopg.__version__}

    def _config(self, store: Path) -> DBOSConfig:
        config = super()._config(store)
        config["system_database_url"] = url_of(store)
        return config

    def open(self, store: Path) -> None:
        fresh_database(store)
        super().open(store)
        self._url = url_of(store)

    def commit_floor(self, path: Path, samples: int) -> list[float]:
        return pg_commit_floor(samples)

    def remote_resolver(self, store: Path) -> Callable[[str], None]:
        from dbos import DBOSClient

        client = DBOSClient(system_database_url=url_of(store), application_name="flovyn-bench")

        def resolve(key: str) -> None:
            client.send(key, True, topic="go")

        return resolve
