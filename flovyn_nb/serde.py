"""Typed values <-> JSON. Pydantic models, dataclasses and JSON values; never pickle.

Values are stored as JSON text so that reading a store can never run code. A value goes
in through :func:`to_json` and comes back typed through :func:`from_json` with the type
the code declared (a task's return annotation, a promise's ``type_hint``, ...).
"""

from __future__ import annotations

import functools
import inspect
import json
from typing import Any

import pydantic
import pydantic_core

from flovyn_nb.errors import InvalidInput

JSON = Any


def to_json(value: Any, *, what: str = "value") -> JSON:
    """Convert a value to plain JSON data (dicts, lists, str, numbers, bools, None).

    Raises:
        InvalidInput: the value cannot be represented as JSON.
    """
    try:
        return pydantic_core.to_jsonable_python(value)
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidInput(
            f"{what} of type {type(value).__name__} cannot be stored as JSON; "
            "use a pydantic model, a dataclass or plain JSON values"
        ) from exc


# One encoder for every call (json.dumps with options builds a new one each time: half of
# its cost for the small payloads of events).
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any, *, what: str = "value") -> str:
    """JSON text for a value (see :func:`to_json`)."""
    data = to_json(value, what=what)
    try:
        return _ENCODER.encode(data)
    except ValueError as exc:
        raise InvalidInput(f"{what} cannot be stored as JSON: {exc}") from exc


def loads(text: str | None) -> JSON:
    return None if text is None else json.loads(text)


def _is_untyped(type_hint: Any) -> bool:
    return type_hint is Any or type_hint is None or type_hint is inspect.Parameter.empty


@functools.lru_cache(maxsize=512)
def _adapter(type_hint: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(type_hint)


def _adapter_for(type_hint: Any) -> pydantic.TypeAdapter[Any]:
    try:
        return _adapter(type_hint)
    except TypeError:  # unhashable type expression: build it uncached
        return pydantic.TypeAdapter(type_hint)


def from_json(data: JSON, type_hint: Any, *, what: str = "value") -> Any:
    """Validate JSON data into ``type_hint`` (returned unchanged when untyped).

    Raises:
        InvalidInput: the data does not fit the type; the message lists what is wrong.
    """
    if _is_untyped(type_hint):
        return data
    try:
        return _adapter_for(type_hint).validate_python(data)
    except pydantic.ValidationError as exc:
        raise InvalidInput(
            f"{what} is not a valid {type_name(type_hint)}: {_errors(exc)}"
        ) from None


def check(value: Any, type_hint: Any, *, what: str = "value") -> JSON:
    """Validate a value (typed or plain JSON) against ``type_hint``; return its JSON form."""
    data = to_json(value, what=what)
    from_json(data, type_hint, what=what)
    return data


def schema_of(type_hint: Any) -> JSON:
    """The JSON schema of a type, or None for an untyped value."""
    if _is_untyped(type_hint):
        return None
    try:
        return _adapter_for(type_hint).json_schema()
    except pydantic.PydanticUserError:
        return None


def validate_against_schema(data: JSON, schema: JSON, *, what: str = "value") -> None:
    """Check JSON data against a stored JSON schema (used where the Python type is unknown).

    Raises:
        InvalidInput: the data breaks the schema.
    """
    if not schema:
        return
    import jsonschema  # lazy: only needed for cross-process resolution

    validator = jsonschema.Draft202012Validator(schema)
    problems = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    if problems:
        parts = []
        for err in problems[:5]:
            where = ".".join(str(p) for p in err.absolute_path) or "value"
            parts.append(f"{where}: {err.message}")
        title = schema.get("title", "the expected type") if isinstance(schema, dict) else "type"
        raise InvalidInput(f"{what} is not a valid {title}: " + "; ".join(parts))


def type_name(type_hint: Any) -> str:
    return getattr(type_hint, "__name__", None) or repr(type_hint)


def _errors(exc: pydantic.ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
