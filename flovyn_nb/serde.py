"""Typed values <-> JSON. Pydantic models, dataclasses and JSON values; never pickle.

Values are stored as JSON text so that reading a store can never run code. A value goes
in through :func:`to_json` / :func:`encode_value` and comes back typed through
:func:`from_json` with the type the code declared (a task's return annotation, a
promise's ``type_hint``, ...).

Every value is refused up front, with :class:`InvalidInput` naming where inside it the
problem is, when JSON cannot hold it: bytes that are not UTF-8 text, a container that
contains itself, NaN or infinity (not JSON; DuckDB's JSON type rejects them later), an
object of an unknown type, or more JSON text than ``FLOVYN_NB_MAX_VALUE_BYTES``.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import pydantic
import pydantic_core

from flovyn_nb.errors import InvalidInput

JSON = Any

MAX_VALUE_ENV = "FLOVYN_NB_MAX_VALUE_BYTES"
DEFAULT_MAX_VALUE_BYTES = 64 * 1024 * 1024
# What an event adds around a value it carries (ids, names, ...): a value just under the
# limit must still fit in the event that records it.
_ENVELOPE_BYTES = 64 * 1024


def max_value_bytes() -> int | None:
    """The largest value, in bytes of JSON text, that may be stored (None: no limit).

    Set by ``FLOVYN_NB_MAX_VALUE_BYTES`` (bytes; ``0`` turns the limit off), 64 MiB by
    default: storing a value costs a few times its size in memory while it is written.

    Raises:
        InvalidInput: the environment variable is not a whole number.
    """
    text = os.environ.get(MAX_VALUE_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_VALUE_BYTES
    try:
        limit = int(text)
    except ValueError:
        raise InvalidInput(
            f"{MAX_VALUE_ENV}={text!r} is not a whole number of bytes; "
            f"set it to e.g. {DEFAULT_MAX_VALUE_BYTES} (0 turns the limit off)"
        ) from None
    return limit if limit > 0 else None


def _encode(value: Any, what: str, headroom: int = 0) -> bytes:
    """UTF-8 JSON for a value, or :class:`InvalidInput` saying where it cannot be JSON."""
    try:
        if not isinstance(value, _PLAIN):
            # A model writes NaN as null in JSON (pydantic's default) but keeps it in its
            # Python form, which is what the code that reads the value gets: serialise the
            # Python form, so NaN comes out as NaN and is refused like any other.
            value = pydantic_core.to_jsonable_python(value)
        # One pass in Rust straight to text: no intermediate copy of a plain value as
        # Python lists and dicts (for a big value that copy costs several times its size).
        out = pydantic_core.to_json(value)
    except (ValueError, RecursionError) as exc:  # PydanticSerializationError, UnicodeError
        raise _refusal(value, what, exc) from None
    # NaN and infinity come out as bare tokens; a quick scan of the text decides whether
    # the (slow) search for the offending float is needed at all.
    if b"NaN" in out or b"Infinity" in out:
        found = _first_problem(pydantic_core.to_jsonable_python(value))
        if found is not None:
            raise _invalid(what, *found)
    limit = max_value_bytes()
    if limit is not None and len(out) > limit + headroom:
        raise InvalidInput(
            f"{what} is {_mb(len(out))} of JSON, above the limit of {_mb(limit)} "
            f"({MAX_VALUE_ENV}); keep big data in a file or table and pass its path, "
            f"or raise {MAX_VALUE_ENV} (bytes; 0 = no limit)"
        )
    return out


def to_json(value: Any, *, what: str = "value") -> JSON:
    """Convert a value to plain JSON data (dicts, lists, str, numbers, bools, None).

    Raises:
        InvalidInput: the value cannot be represented as JSON (the message names where
            inside it and what to do), or its JSON is above :func:`max_value_bytes`.
    """
    _encode(value, what)
    try:
        return pydantic_core.to_jsonable_python(value)
    except (ValueError, RecursionError) as exc:  # encodable, so not expected
        raise _refusal(value, what, exc) from None


def jsonable(value: Any) -> JSON:
    """JSON data for a value that :func:`encode_value` or :func:`to_json` took already
    (strings are shared with the value, not copied)."""
    return pydantic_core.to_jsonable_python(value)


def encode_value(value: Any, *, what: str = "value") -> str:
    """JSON text for a user's value, encoded once (see :func:`to_json`).

    Raises:
        InvalidInput: as :func:`to_json`.
    """
    return _encode(value, what).decode()


def dumps(value: Any, *, what: str = "value") -> str:
    """JSON text for any document to store, e.g. an event payload carrying a value.

    Raises:
        InvalidInput: as :func:`to_json` (the size limit allows for an event's envelope).
    """
    return _encode(value, what, _ENVELOPE_BYTES).decode()


def loads(text: str | None) -> JSON:
    return None if text is None else json.loads(text)


# -- finding where a value cannot be JSON ------------------------------------------------

_PLAIN = (dict, list, tuple, str, int, float, type(None))
_MAX_DEPTH = 500  # deeper than pydantic_core serialises; walking stops there too
_ROOTS = ("input", "value", "result", "output", "state", "signal")


def _refusal(value: Any, what: str, exc: BaseException) -> InvalidInput:
    found = _first_problem(value)
    if found is not None:
        return _invalid(what, *found)
    return InvalidInput(
        f"{what} of type {type(value).__name__} cannot be stored as JSON ({exc}); "
        "use a pydantic model, a dataclass or plain JSON values"
    )


def _invalid(what: str, path: str, problem: str) -> InvalidInput:
    first = what.split(" ", 1)[0]
    root = first if first in _ROOTS else "value"
    if len(path) > 60:  # a very deep path: its ends say enough
        path = f"{path[:30]}...{path[-25:]}"
    problem = problem.replace("{root}", root)
    return InvalidInput(f"{what} cannot be stored as JSON: {root}{path} {problem}")


def _first_problem(value: Any) -> tuple[str, str] | None:
    """The path (``['rows'][3]``) of the first part of ``value`` JSON cannot hold, and
    what is wrong with it and what to do; None when every part is fine.

    Depth-first with an explicit stack (a deep value must not overflow Python's), keeping
    the containers on the current path to recognise one that contains itself.
    """
    on_path: dict[int, str] = {}
    stack: list[tuple[Any, str, bool]] = [(value, "", False)]
    while stack:
        item, path, leaving = stack.pop()
        if leaving:
            on_path.pop(id(item), None)
            continue
        children = _children(item)
        if children is None:
            problem = _leaf_problem(item)
            if problem is not None:
                return path, problem
            continue
        if id(item) in on_path:
            back = on_path[id(item)]
            return path, (
                f"is the {type(item).__name__} at {{root}}{back} again (a circular "
                "reference); store a copy without the cycle"
            )
        if path.count("[") + path.count(".") >= _MAX_DEPTH:
            return path, f"is nested more than {_MAX_DEPTH} levels deep; flatten it"
        on_path[id(item)] = path
        stack.append((item, path, True))
        stack.extend((child, path + step, False) for step, child in reversed(list(children)))
    return None


def _children(item: Any) -> Iterator[tuple[str, Any]] | None:
    """The parts of a container with the path step to each; None for a leaf."""
    if isinstance(item, dict):
        return ((f"[{k!r}]", v) for k, v in item.items())
    if isinstance(item, list | tuple | set | frozenset):
        return ((f"[{i}]", v) for i, v in enumerate(item))
    if isinstance(item, pydantic.BaseModel):
        return ((f".{k}", getattr(item, k, None)) for k in type(item).model_fields)
    if dataclasses.is_dataclass(item) and not isinstance(item, type):
        return ((f".{f.name}", getattr(item, f.name, None)) for f in dataclasses.fields(item))
    return None


def _leaf_problem(item: Any) -> str | None:
    if item is None or isinstance(item, str | int):  # bool is an int
        return None
    if isinstance(item, float):
        return (
            None
            if math.isfinite(item)
            else (
                f"is {item!r}, which JSON cannot represent; use None, a finite number or a "
                "string instead"
            )
        )
    if isinstance(item, bytes | bytearray | memoryview):
        try:
            bytes(item).decode("utf-8")
        except UnicodeDecodeError as exc:
            return (
                f"is bytes that are not UTF-8 text (byte 0x{bytes(item)[exc.start]:02x} at "
                f"position {exc.start}); decode them to str yourself, or store them "
                "base64-encoded: base64.b64encode(data).decode()"
            )
        return None
    try:
        pydantic_core.to_json(item)
    except (ValueError, RecursionError) as exc:
        return (
            f"has type {type(item).__name__}, which cannot be stored as JSON ({exc}); "
            "use a pydantic model, a dataclass or plain JSON values"
        )
    return None


def _mb(n: int) -> str:
    return f"{n} bytes" if n < 1024 * 1024 else f"{n / (1024 * 1024):.1f} MiB"


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
