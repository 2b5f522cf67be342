"""Promise forms: a JSON schema becomes form fields, and form input becomes a JSON value.

The browser only renders the fields and sends back the raw input (text, a checkbox, the
index of a chosen option); turning that into JSON happens here, so that conversion errors
("'abc' is not a number") are reported next to the form exactly like the validation
errors the engine raises for the promise's ``type_hint``.

Field kinds: ``object`` (nested fields), ``boolean``, ``integer``, ``number``, ``string``,
``enum`` (a choice among JSON values) and ``json`` (a text box holding any JSON value:
arrays, unions, untyped promises).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

JSON = Any
_MAX_DEPTH = 6  # deeper (or recursive) models fall back to a JSON text box


class FormError(ValueError):
    """The form input cannot be turned into a value; ``problems`` lists why, ``fields``
    says it field by field (path -> message), for the form to show beside each input."""

    def __init__(self, problems: list[str], fields: dict[str, str] | None = None) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.fields = dict(fields or {})


class _Problems(list[str]):
    """Problems found while collecting, also kept by field path."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, str] = {}

    def add(self, form: Field, message: str) -> None:
        self.append(f"{_where(form)}: {message}")
        self.fields.setdefault(form.path, message)


class _Omit:
    """Marker: the field was left empty and is not required (pydantic fills the default)."""


OMIT = _Omit()


@dataclass
class Field:
    """One input of a promise form, from the promise's JSON schema."""

    path: str  # JSON-pointer-like: "" for the root, "/order/amount" below it
    label: str
    kind: str
    required: bool = True
    nullable: bool = False
    default: JSON = None
    has_default: bool = False
    description: str = ""
    format: str = ""
    options: list[JSON] = field(default_factory=list)
    children: list[Field] = field(default_factory=list)

    def spec(self) -> dict[str, JSON]:
        """The JSON the browser renders the field from (with its initial input)."""
        data: dict[str, JSON] = {
            "path": self.path,
            "label": self.label,
            "kind": self.kind,
            "required": self.required,
            "description": self.description,
        }
        if self.kind == "object":
            data["children"] = [child.spec() for child in self.children]
        elif self.kind == "enum":
            data["options"] = [_option_label(o) for o in self.options]
            data["initial"] = (
                str(self.options.index(self.default))
                if self.has_default and self.default in self.options
                else ""
            )
        elif self.kind == "boolean":
            data["initial"] = bool(self.default) if self.has_default else False
        elif self.kind == "json":
            data["initial"] = json.dumps(self.default) if self.has_default else ""
            data["placeholder"] = (
                f"a JSON list, e.g. {self.format}"
                if self.format.startswith("[")
                else 'JSON, e.g. true, 42, "text", [1, 2] or {"key": "value"}'
            )
        else:
            data["initial"] = (
                "" if not self.has_default or self.default is None else str(self.default)
            )
            data["placeholder"] = self.format or self.kind
        return data


def _option_label(option: JSON) -> str:
    return option if isinstance(option, str) else json.dumps(option)


def build_form(schema: JSON) -> Field:
    """The form for a promise whose value must fit ``schema`` (None: any JSON value)."""
    if not isinstance(schema, dict) or not schema:
        return Field(path="", label="value", kind="json")
    defs = schema.get("$defs", {})
    return _field(schema, defs, path="", label=str(schema.get("title") or "value"), depth=0)


def _resolve(node: JSON, defs: dict[str, JSON]) -> dict[str, JSON]:
    """Follow ``$ref`` (and pydantic's single-item ``allOf`` wrapper) to the real schema."""
    seen = 0
    while isinstance(node, dict) and seen < 20:
        seen += 1
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = defs.get(ref.removeprefix("#/$defs/"), {})
            node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            continue
        all_of = node.get("allOf")
        if isinstance(all_of, list) and len(all_of) == 1:
            node = {**all_of[0], **{k: v for k, v in node.items() if k != "allOf"}}
            continue
        return node
    return node if isinstance(node, dict) else {}


def _field(node: JSON, defs: dict[str, JSON], *, path: str, label: str, depth: int) -> Field:
    node = _resolve(node, defs)
    nullable = False
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        others = [o for o in any_of if not (isinstance(o, dict) and o.get("type") == "null")]
        if len(others) == 1 and len(others) < len(any_of):
            nullable = True
            merged = {k: v for k, v in node.items() if k != "anyOf"}
            node = {**_resolve(others[0], defs), **merged}
    made = Field(path=path, label=label, kind="json", description=str(node.get("description", "")))
    made.nullable = nullable
    if "default" in node:
        made.default, made.has_default = node["default"], True
    kind = node.get("type")
    if "enum" in node and isinstance(node["enum"], list):
        made.kind = "enum"
        made.options = list(node["enum"]) + ([None] if nullable else [])
    elif "const" in node:
        made.kind = "enum"
        made.options = [node["const"]]
    elif kind == "boolean" and not nullable:
        made.kind = "boolean"
    elif kind in ("integer", "number", "string"):
        made.kind = str(kind)
        made.format = str(node.get("format", ""))
    elif kind == "array":
        # A list is typed as JSON; the hint shows a list of the right items.
        items = _resolve(node.get("items", {}), defs).get("type")
        made.format = {"string": '["a", "b"]', "integer": "[1, 2, 3]", "number": "[1.5, 2]"}.get(
            str(items), '[{"key": "value"}]' if items == "object" else "[1, 2]"
        )
    elif kind == "object" and isinstance(node.get("properties"), dict) and depth < _MAX_DEPTH:
        made.kind = "object"
        required = set(node.get("required", []))
        for name, sub in node["properties"].items():
            child = _field(
                sub,
                defs,
                path=f"{path}/{_escape(name)}",
                label=str(name),
                depth=depth + 1,
            )
            child.required = name in required
            parent_default = made.default if made.has_default else None
            # The promise's own default (ctx.promise(default=...)) wins over the model's.
            if isinstance(parent_default, dict) and name in parent_default:
                child.default, child.has_default = parent_default[name], True
            made.children.append(child)
    return made


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def collect(form: Field, raw: dict[str, JSON]) -> JSON:
    """Turn the browser's raw input (path -> text / bool / option index) into a value.

    Raises:
        FormError: some input cannot be converted (each problem names its field).
    """
    problems = _Problems()
    value = _collect(form, raw, problems)
    if problems:
        raise FormError(list(problems), problems.fields)
    if value is OMIT:
        return {} if form.kind == "object" else None
    return value


def _where(form: Field) -> str:
    return form.path.strip("/").replace("/", ".") or form.label


def _collect(form: Field, raw: dict[str, JSON], problems: _Problems) -> JSON:
    if form.kind == "object":
        result: dict[str, JSON] = {}
        for child in form.children:
            value = _collect(child, raw, problems)
            if value is not OMIT:
                result[child.path.rsplit("/", 1)[-1].replace("~1", "/").replace("~0", "~")] = value
        return result if result or form.required or not form.path else OMIT
    entry = raw.get(form.path)
    if form.kind == "boolean":
        return bool(entry)
    if form.kind == "enum":
        if entry in (None, ""):
            return _empty(form, problems)
        try:
            return form.options[int(entry)]
        except (ValueError, IndexError, TypeError):
            problems.add(form, "choose one of the options")
            return OMIT
    text = "" if entry is None else str(entry)
    if form.kind == "string":
        if text == "" and (form.nullable or not form.required):
            return None if form.nullable and not form.has_default else OMIT
        return text
    if text.strip() == "":
        return _empty(form, problems)
    if form.kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            problems.add(form, f"{text!r} is not a whole number")
            return OMIT
    if form.kind == "number":
        try:
            number = float(text.strip())
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            problems.add(form, f"{text!r} is not a number")
            return OMIT
        return int(number) if number.is_integer() and "." not in text else number
    try:
        return json.loads(text)
    except ValueError:
        problems.add(form, 'not valid JSON (write text in double quotes, e.g. "yes")')
        return OMIT


def _empty(form: Field, problems: _Problems) -> JSON:
    if form.nullable and not form.has_default:
        return None
    if form.required and not form.path:
        problems.add(form, "enter a value")
        return OMIT
    if form.required:
        problems.add(form, "required")
    return OMIT
