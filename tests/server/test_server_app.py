"""The extension as installed: enabled by its config file, every route documented in a
valid OpenAPI document, the store found as the kernel finds it."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

import flovyn_nb
from flovyn_nb.server.app.extension import FlovynNb
from flovyn_nb.server.door import find_store
from flovyn_nb.server.handlers import ROUTES
from flovyn_nb.server.handlers.base import BaseHandler
from flovyn_nb.server.openapi import document

ROOT = Path(__file__).resolve().parents[2]


def _app_routes(router: Any) -> list[tuple[str, type[BaseHandler]]]:
    """(URL regex, handler) of every flovyn_nb handler the tornado app routes to."""
    found = []
    for rule in getattr(router, "rules", []):
        target = rule.target
        if isinstance(target, type) and issubclass(target, BaseHandler):
            found.append((rule.matcher.regex.pattern, target))
        else:
            found.extend(_app_routes(target))
    return found


def test_the_document_is_valid_openapi() -> None:
    validate(document())


def test_every_route_of_the_app_is_documented_with_its_methods(jp_web_app: Any) -> None:
    served = _app_routes(jp_web_app.default_router)
    assert len(served) == len(ROUTES)
    paths = document()["paths"]
    by_handler = {r.handler: r.template for r in ROUTES}
    for pattern, handler in served:
        assert "/flovyn-nb/api/" in pattern
        template = by_handler[handler]
        methods = {m for m in ("get", "post", "put", "patch", "delete") if m in vars(handler)}
        inherited = {
            m for m in ("get", "post") if getattr(handler, m) is not getattr(BaseHandler, m)
        }
        assert set(paths[template]) == methods | inherited, template
    assert sorted(paths) == sorted(by_handler.values())


async def test_openapi_json_is_served(api: Any) -> None:
    status, answer = await api("openapi.json")
    assert status == 200 and answer == document()


def test_the_extension_is_found_and_loaded(jp_serverapp: Any) -> None:
    [point] = flovyn_nb._jupyter_server_extension_points()
    assert point["app"] is FlovynNb
    manager = jp_serverapp.extension_manager
    assert manager.extensions["flovyn_nb"].enabled
    assert [type(app) for app in manager.extension_apps["flovyn_nb"]] == [FlovynNb]


def test_installing_the_package_enables_the_extension() -> None:
    config = ROOT / "jupyter-config" / "jupyter_server_config.d" / "flovyn_nb.json"
    assert json.loads(config.read_text()) == {
        "ServerApp": {"jpserver_extensions": {"flovyn_nb": True}}
    }
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shared = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared[str(config.relative_to(ROOT))] == (
        "etc/jupyter/jupyter_server_config.d/flovyn_nb.json"
    )


def test_the_store_is_found_from_the_root_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOVYN_NB_STORE", raising=False)
    root = tmp_path / "notebooks"
    assert find_store("", str(root)) == str((root / ".flovyn" / "flovyn.duckdb").resolve())
    assert find_store("shared/s.duckdb", str(root)) == str((root / "shared/s.duckdb").resolve())
    assert find_store(str(tmp_path / "abs.duckdb"), str(root)) == str(tmp_path / "abs.duckdb")
    monkeypatch.setenv("FLOVYN_NB_STORE", str(tmp_path / "env.duckdb"))
    assert find_store("", str(root)) == str(tmp_path / "env.duckdb")
    assert find_store("postgresql://db/x", str(root)) == "postgresql://db/x"
