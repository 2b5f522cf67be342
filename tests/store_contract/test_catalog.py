"""Store contract: the catalog of definitions (record_definitions / list_definitions)."""

from __future__ import annotations

import json
import time

from contract_helpers import StoreFactory

from flovyn_nb.store import Store
from flovyn_nb.store.catalog import NewDefinition


def definition(kind: str, source_hash: str, *, type: str = "workflow") -> NewDefinition:
    return NewDefinition(
        type=type,  # type: ignore[arg-type]
        kind=kind,
        source_hash=source_hash,
        description=f"{kind} at {source_hash}",
        source=f"def {kind}(): ...  # {source_hash}",
        input_schema_json=json.dumps({"type": "integer"}),
        output_schema_json=None,
    )


def test_new_sources_get_new_versions_and_old_ones_are_kept(store: Store) -> None:
    now = time.time()
    store.record_definitions([definition("wf", "h1")], engine_id=None, queues=[], now=now)
    store.record_definitions([definition("wf", "h2")], engine_id=None, queues=[], now=now + 1)
    store.record_definitions([definition("wf", "h2")], engine_id=None, queues=[], now=now + 2)
    latest = store.list_definitions(kind="wf")
    assert [(d.kind, d.version, d.source_hash) for d in latest] == [("wf", 2, "h2")]
    assert latest[0].input_schema == {"type": "integer"}
    assert latest[0].source == "def wf(): ...  # h2"
    assert latest[0].registered_at < latest[0].last_registered_at
    every = store.list_definitions(kind="wf", all_versions=True)
    assert [(d.version, d.source_hash) for d in every] == [(2, "h2"), (1, "h1")]


def test_registering_an_old_source_again_makes_it_the_latest(store: Store) -> None:
    now = time.time()
    for i, source_hash in enumerate(["h1", "h2", "h1"]):
        store.record_definitions(
            [definition("wf", source_hash)], engine_id=None, queues=[], now=now + i
        )
    latest = store.list_definitions(kind="wf")
    assert [(d.version, d.source_hash) for d in latest] == [(1, "h1")]


def test_workflows_and_tasks_are_apart(store: Store) -> None:
    store.record_definitions(
        [definition("same", "a"), definition("same", "b", type="task"), definition("x", "c")],
        engine_id=None,
        queues=[],
        now=time.time(),
    )
    assert [(d.type, d.kind) for d in store.list_definitions()] == [
        ("workflow", "same"),
        ("workflow", "x"),
        ("task", "same"),
    ]
    assert [d.kind for d in store.list_definitions(type="task")] == ["same"]


def test_the_engines_serving_a_kind_are_listed_until_they_stop(
    make_store: StoreFactory,
) -> None:
    one, other = make_store(), make_store()
    now = time.time()
    for engine_id, store in (("e1", one), ("e2", other)):
        store.register_engine(engine_id, pid=1, host="h", proc_start=None, now=now)
    one.record_definitions([definition("wf", "h1")], engine_id="e1", queues=["default"], now=now)
    other.record_definitions(
        [definition("wf", "h2")], engine_id="e2", queues=["q", "r"], now=now + 1
    )
    [row] = one.list_definitions(kind="wf")
    assert [(s.engine.id, s.source_hash, s.queues) for s in row.servers] == [
        ("e1", "h1", ["default"]),
        ("e2", "h2", ["q", "r"]),
    ]
    # Registering again replaces what the engine said about the kind.
    other.record_definitions([definition("wf", "h2")], engine_id="e2", queues=["q"], now=now + 2)
    one.stop_engine("e1")
    [row] = other.list_definitions(kind="wf")
    assert [(s.engine.id, s.queues) for s in row.servers] == [("e2", ["q"])]


def test_an_unknown_kind_lists_nothing(store: Store) -> None:
    assert store.list_definitions(kind="nope") == []
