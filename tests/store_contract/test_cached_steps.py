"""Store contract: the step cache of @task(cache=True) (CacheStep, find_cached_step)."""

from __future__ import annotations

import time

from contract_helpers import StoreFactory, start

from flovyn_nb.store import CachedStep, CacheStep, Change, Store


def _remember(store: Store, execution_id: str, task_id: str, output: str, **keys: str) -> None:
    key = {"task_kind": "t", "source_hash": "s1", "input_hash": "i1"} | keys
    store.commit(
        [
            Change(
                intents=[
                    CacheStep(
                        key["task_kind"],
                        key["source_hash"],
                        key["input_hash"],
                        execution_id,
                        task_id,
                        output,
                        time.time(),
                    )
                ]
            )
        ]
    )


def test_a_remembered_step_is_found_by_its_three_keys_newest_first(
    make_store: StoreFactory,
) -> None:
    writer, reader = make_store(), make_store()
    one = start(writer, "w-cache-1")
    two = start(writer, "w-cache-2")
    assert writer.find_cached_step("t", "s1", "i1") is None
    _remember(writer, one.execution_id, "task-a", '{"v": 1}')
    _remember(writer, two.execution_id, "task-b", "[1, 2]")
    _remember(writer, two.execution_id, "task-c", "3", source_hash="s2")
    writer.release()
    assert reader.find_cached_step("t", "s1", "i1") == CachedStep(
        "w-cache-2", two.execution_id, "task-b", [1, 2]
    )
    assert reader.find_cached_step("t", "s2", "i1") == CachedStep(
        "w-cache-2", two.execution_id, "task-c", 3
    )
    assert reader.find_cached_step("t", "s1", "other-input") is None
    assert reader.find_cached_step("other-task", "s1", "i1") is None


def test_a_step_of_a_run_that_is_gone_is_not_found(store: Store) -> None:
    _remember(store, "no-such-execution", "task-a", "1")
    assert store.find_cached_step("t", "s1", "i1") is None
