"""Backends under the store contract: each yields a factory of :class:`Store` handles on
one fresh, shared store (two handles act like two processes on it).

A backend joins by adding itself to ``BACKENDS``. PostgreSQL runs on the session's
throwaway server (``tests/conftest.py``), one fresh database per test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contract_helpers import StoreFactory

from flovyn_nb.store import Store, open_store


def _duckdb(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    path = tmp_path / "contract.duckdb"
    return lambda: open_store(path, lock_timeout=10.0, idle_release=0.05)


def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    url = request.getfixturevalue("pg_url")
    return lambda: open_store(url, lock_timeout=10.0)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], Callable[[], Store]]] = {
    "duckdb": _duckdb,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens handles on one fresh store of the backend; closes them all afterwards."""
    opener = BACKENDS[request.param](request, tmp_path)
    opened: list[Store] = []

    def make() -> Store:
        store = opener()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> Store:
    return make_store()
