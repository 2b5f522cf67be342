from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pg_server import PgServer

import flovyn_nb as fn
from flovyn_nb import Runtime
from flovyn_nb.testing import FakeClock, temporary_engine


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server for the whole session (fails loudly if it cannot
    start: PostgreSQL is part of the test setup, see `make unit`)."""
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """PostgreSQL variants (``store_target``) are dropped for tests marked ``duckdb_only``
    and, in a module with a ``POSTGRES_TESTS`` set, for tests not named in it."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = callspec is not None and callspec.params.get("store_target") == "postgres"
        chosen = getattr(item.module, "POSTGRES_TESTS", None) if on_postgres else None
        name = getattr(item, "originalname", item.name)
        if on_postgres and (
            item.get_closest_marker("duckdb_only") or (chosen is not None and name not in chosen)
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["duckdb", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A fresh store of each backend: a DuckDB file, or a PostgreSQL database. A module
    runs its engine tests on both by defining ``store_path`` as this fixture."""
    if request.param == "duckdb":
        return tmp_path / "flovyn.duckdb"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """The URL of a fresh, empty database on the session's server."""
    return pg_server.create_database()


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "flovyn.duckdb"


@pytest.fixture
def engine(store_path: Path) -> Iterator[Runtime]:
    """The process's engine on a fresh store, with the real clock."""
    with temporary_engine(store=store_path) as engine:
        yield engine
    assert engine.errors == [], engine.errors


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(autojump=True)


@pytest.fixture
def fake_engine(store_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    """The process's engine on a fresh store, on virtual time that jumps to deadlines."""
    with temporary_engine(store=store_path, clock=clock) as engine:
        yield engine
    assert engine.errors == [], engine.errors


@pytest.fixture(autouse=True)
def _no_engine_left_running() -> Iterator[None]:
    yield
    fn.stop()
