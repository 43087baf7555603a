"""The Run form from a flow's parameter schema, and a submitted form read back (pure)."""

from __future__ import annotations

import enum

from dagflow import flow
from dagflow.server.pages.forms import errors_by_field, fields_of, pairs_of, submitted


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


@flow
def shaped(
    day: str,
    rows: int = 10,
    ratio: float | None = None,
    tags: list[str] | None = None,
    colour: Colour = Colour.RED,
    fast: bool = False,
    extra: dict[str, int] | None = None,
) -> int:
    """A flow with a parameter of every kind."""
    return rows


def test_each_parameter_gets_the_input_its_type_calls_for() -> None:
    fields = {f.name: f for f in fields_of(shaped.parameters_schema(), {"rows": 3})}
    assert list(fields) == ["day", "rows", "ratio", "tags", "colour", "fast", "extra"]
    kinds = {name: (f.kind, f.type_text) for name, f in fields.items()}
    assert kinds == {
        "day": ("text", "string"),
        "rows": ("number", "integer"),
        "ratio": ("number", "number, or null"),
        "tags": ("json", "list of string, or null"),
        "colour": ("choice", "one of red, blue"),
        "fast": ("bool", "true/false"),
        "extra": ("json", "object, or null"),
    }
    assert fields["colour"].options == ("red", "blue")
    assert fields["day"].required and fields["day"].placeholder == "required"
    assert not fields["rows"].required
    assert fields["rows"].placeholder == "deployment default: 3"
    assert fields["tags"].placeholder == "default: null"
    assert fields["day"].input_name == "param:day" and fields["day"].input_id == "param-day"


def test_a_submitted_form_is_the_pairs_the_cli_takes_and_errors_land_on_their_fields() -> None:
    form = {"param:day": ["mon"], "param:rows": [" "], "param:tags": ['["a"]'], "other": ["x"]}
    values = submitted(form)
    assert values == {"day": "mon", "rows": " ", "tags": '["a"]'}
    assert pairs_of(values) == ["day=mon", 'tags=["a"]']  # an empty field is not given
    errors = [
        {"loc": ("rows",), "msg": "Input should be a valid integer"},
        {"loc": ("tags", 1), "msg": "Input should be a valid string"},
        {"loc": ("--param",), "msg": "expected NAME=VALUE"},
        {"loc": ("colour2",), "msg": "unknown parameter"},
    ]
    by_field, other = errors_by_field(errors, ["day", "rows", "tags"])
    assert by_field == {
        "rows": "Input should be a valid integer",
        "tags": "1: Input should be a valid string",
    }
    assert other == ["--param: expected NAME=VALUE", "colour2: unknown parameter"]
    shown = {f.name: f for f in fields_of(shaped.parameters_schema(), {}, values, by_field)}
    assert shown["rows"].error.startswith("Input should be") and shown["day"].error == ""
    assert shown["tags"].value == '["a"]'
