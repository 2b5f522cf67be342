"""Promise forms (issue 16, item 5): a markdown description and a default recorded with
the promise, errors attached to their fields, a correct hint for list fields."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

import flovyn_nb as fn
from flovyn_nb.testing import wait_until
from flovyn_nb.widgets.forms import FormError, build_form, collect


class Order(pydantic.BaseModel):
    approved: bool
    amount: int = 1
    tags: list[str] = []


def test_description_and_default_are_recorded_with_the_promise(tmp_path: Path) -> None:
    @fn.workflow(name="described")
    async def described(ctx: fn.WorkflowContext) -> Order:
        return await ctx.promise(
            "order",
            type_hint=Order,
            description="Check **the stock** first",
            default=Order(approved=True, amount=3),
        )

    with fn.start(tmp_path / "s.duckdb"):
        handle = fn.start_workflow(described, workflow_id="d-1")
        wait_until(lambda: fn.pending_promises("d-1"), timeout=30)
        [created] = [e for e in fn.get_run("d-1").events if e.type.value == "PROMISE_CREATED"]
        schema = created.payload["schema"]
        assert isinstance(schema, dict)
        assert schema["description"] == "Check **the stock** first"
        assert schema["default"] == {"approved": True, "amount": 3, "tags": []}
        spec = build_form(schema).spec()
        assert spec["description"] == "Check **the stock** first"
        initial = {child["label"]: child["initial"] for child in spec["children"]}
        assert initial == {"approved": True, "amount": "3", "tags": "[]"}
        fn.resolve_promise("d-1", "order", {"approved": False})
        assert handle.result(timeout=30) == Order(approved=False)


def test_errors_are_attached_to_their_fields() -> None:
    form = build_form(pydantic.TypeAdapter(Order).json_schema())
    with pytest.raises(FormError) as caught:
        collect(form, {"/approved": True, "/amount": "three", "/tags": "[oops"})
    assert caught.value.fields == {
        "/amount": "'three' is not a whole number",
        "/tags": 'not valid JSON (write text in double quotes, e.g. "yes")',
    }


def test_list_fields_hint_a_list_of_their_items() -> None:
    spec = build_form(pydantic.TypeAdapter(Order).json_schema()).spec()
    [tags] = [child for child in spec["children"] if child["label"] == "tags"]
    assert tags["placeholder"] == 'a JSON list, e.g. ["a", "b"]'
    assert collect(
        build_form(pydantic.TypeAdapter(Order).json_schema()), {"/approved": True, "/tags": '["x"]'}
    ) == {
        "approved": True,
        "tags": ["x"],
    }
