"""Reusing unchanged steps across runs (``@task(cache=True)`` / ``cache_key=``).

A cached task's step is keyed by the task's kind, the hash of its source and the hash of
its input (or of ``cache_key(input)``), recorded in its ``TASK_SCHEDULED`` event. Before
its first attempt the task runner looks the key up in the store: a completed step with
that key is reused (recorded ``TASK_COMPLETED`` with ``cachedFrom``; nothing runs).
A step that completes by running is remembered for later runs in the same transaction
as its ``TASK_COMPLETED``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from flovyn_nb import serde
from flovyn_nb.definitions import TaskDefinition
from flovyn_nb.engine.faults import storable
from flovyn_nb.errors import InvalidInput, StoreError
from flovyn_nb.store import CachedStep, CacheStep, Store

__all__ = ["StepKey", "find", "key_for", "remember"]


@dataclass(frozen=True, slots=True)
class StepKey:
    task_kind: str
    source_hash: str
    input_hash: str


def key_for(definition: TaskDefinition[Any], input_json: Any) -> StepKey | None:
    """The cache key of a step of ``definition`` with this input (None: not cached).

    Raises:
        InvalidInput: ``cache_key`` raised, or returned a value with no JSON form.
    """
    if not definition.cache:
        return None
    keyed = input_json
    if definition.cache_key is not None:
        value = serde.from_json(input_json, definition.input_type, what="task input")
        try:
            keyed = definition.cache_key(value)
        except Exception as exc:
            raise InvalidInput(
                f"cache_key of task {definition.name!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        keyed = storable(keyed, what=f"cache_key of task {definition.name!r}")
    # Sorted keys, no spaces: equal JSON values hash alike whatever their key order.
    text = json.dumps(keyed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return StepKey(definition.name, definition.source_hash, digest)


def find(store: Store, key: StepKey) -> CachedStep | None:
    """The step to reuse, or None; a store that cannot answer now is a miss (the step
    then just runs)."""
    try:
        return store.find_cached_step(key.task_kind, key.source_hash, key.input_hash)
    except StoreError:
        return None


def remember(
    key: StepKey, execution_id: str, task_execution_id: str, output: Any, now: float
) -> CacheStep:
    """The intent that records a completed step for later runs."""
    return CacheStep(
        key.task_kind,
        key.source_hash,
        key.input_hash,
        execution_id,
        task_execution_id,
        serde.dumps(output),
        now,
    )
