"""Flow parameters: coercion, one error naming every bad field, JSON schema, defaults."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dagflow import DagflowError, DefinitionError, ParameterError, flow
from dagflow.core.params import parse_parameters


@flow
def etl(rows: int, factor: float = 1.5, regions: list[str] | None = None, dry: bool = False) -> int:
    """Load some rows."""
    return rows


def fields(error: ParameterError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in error.errors}


def test_strings_are_coerced_to_the_annotated_types() -> None:
    params = etl.validate_parameters(
        {"rows": "3", "factor": "2.5", "regions": ["a", "b"], "dry": "true"}
    )
    assert params == {"rows": 3, "factor": 2.5, "regions": ["a", "b"], "dry": True}
    assert type(params["rows"]) is int


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_any_integer_written_as_text_comes_back_as_that_integer(n: int) -> None:
    assert etl.validate_parameters({"rows": str(n)})["rows"] == n


def test_defaults_are_filled_in() -> None:
    assert etl.validate_parameters({"rows": 1}) == {
        "rows": 1,
        "factor": 1.5,
        "regions": None,
        "dry": False,
    }


def test_every_bad_field_is_named_in_one_error() -> None:
    with pytest.raises(ParameterError) as info:
        etl.validate_parameters({"rows": "many", "factor": "big", "dry": "perhaps"})
    error = info.value
    assert fields(error) == {"rows", "factor", "dry"}
    message = str(error)
    assert message.startswith("invalid parameters for flow 'etl': ")
    for name in ("rows", "factor", "dry"):
        assert f"{name}: " in message
    assert "\n" not in message
    assert error.flow_name == "etl"


def test_missing_and_unknown_parameters_are_named() -> None:
    with pytest.raises(ParameterError) as info:
        etl.validate_parameters({"factor": 2, "colour": "red"})
    assert fields(info.value) == {"rows", "colour"}


def test_a_bad_list_item_is_named_with_its_index() -> None:
    with pytest.raises(ParameterError) as info:
        etl.validate_parameters({"rows": 1, "regions": ["a", ["not", "a", "str"]]})
    assert fields(info.value) == {"regions.1"}


def test_parameter_error_is_a_value_error_and_a_dagflow_error() -> None:
    with pytest.raises(ParameterError) as info:
        etl.validate_parameters({"rows": "x"})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, DagflowError)
    assert info.value.exit_code == 2


def test_the_json_schema_describes_types_defaults_and_required_fields() -> None:
    schema = etl.parameters_schema()
    assert schema["title"] == "etl"
    assert schema["type"] == "object"
    props = schema["properties"]
    assert set(props) == {"rows", "factor", "regions", "dry"}
    assert props["rows"]["type"] == "integer"
    assert props["factor"] == {"default": 1.5, "title": "Factor", "type": "number"}
    assert props["dry"]["default"] is False
    assert schema["required"] == ["rows"]


class Opaque:
    """A parameter type pydantic cannot describe as JSON."""


def test_a_parameter_without_a_json_form_still_gets_a_schema() -> None:
    @flow
    def odd(thing: Opaque, n: int = 1) -> None: ...

    schema = odd.parameters_schema()
    assert set(schema["properties"]) == {"thing", "n"}
    assert odd.validate_parameters({"thing": Opaque()})["n"] == 1


def test_string_annotations_resolve_in_the_flow_module() -> None:
    # this module uses `from __future__ import annotations`: every annotation is a string
    @flow
    def dated(day: date, rows: int = 1) -> None: ...

    assert dated.validate_parameters({"day": "2024-02-29"})["day"] == date(2024, 2, 29)
    assert dated.parameters_schema()["properties"]["day"]["format"] == "date"


def test_an_annotation_that_cannot_be_resolved_is_named_at_decoration() -> None:
    class Local:  # invisible to the module namespace the annotation is evaluated in
        pass

    with pytest.raises(DefinitionError) as info:

        @flow
        def local(thing: Local) -> None: ...

    message = str(info.value)
    assert message.startswith("flow 'local': cannot resolve the type 'Local' of parameter 'thing'")


def test_unannotated_parameters_accept_anything() -> None:
    @flow
    def loose(x, y=2):  # type: ignore[no-untyped-def]
        return x

    assert loose.validate_parameters({"x": object}) == {"x": object, "y": 2}


def test_validate_parameters_false_skips_coercion_but_fills_defaults() -> None:
    raw = etl.with_options(validate_parameters=False)
    assert raw.validate_parameters({"rows": "3"}) == {
        "rows": "3",
        "factor": 1.5,
        "regions": None,
        "dry": False,
    }
    with pytest.raises(ParameterError) as info:
        raw.validate_parameters({"factor": 2})
    assert fields(info.value) == {"rows"}


def test_call_arguments_are_bound_to_names_as_python_would() -> None:
    model = etl.parameters
    assert model.bind((5,), {"dry": True}) == {"rows": 5, "dry": True}
    with pytest.raises(ParameterError, match="too many positional arguments"):
        model.bind((1, 2, 3, 4, 5), {})
    with pytest.raises(ParameterError, match="multiple values"):
        model.bind((1,), {"rows": 2})


def test_positional_only_and_keyword_parameters_round_trip() -> None:
    @flow
    def f(a: int, /, b: int, *, c: date) -> None: ...

    params = f.validate_parameters(f.parameters.bind(("1", 2), {"c": "2024-02-29"}))
    assert params == {"a": 1, "b": 2, "c": date(2024, 2, 29)}
    args, kwargs = f.parameters.call_arguments(params)
    assert args == (1,)
    assert kwargs == {"b": 2, "c": date(2024, 2, 29)}


def test_var_keyword_flows_accept_extra_parameters() -> None:
    @flow
    def open_ended(n: int = 0, **extra: Any) -> None: ...

    params = open_ended.validate_parameters(open_ended.parameters.bind((), {"n": "4", "z": 1}))
    assert params == {"n": 4, "z": 1}
    assert open_ended.parameters.call_arguments(params) == ((), {"n": 4, "z": 1})


def test_var_positional_flows_are_refused_at_decoration() -> None:
    with pytest.raises(DefinitionError, match=r"flow 'star': \*items is not supported"):

        @flow
        def star(*items: int) -> None: ...


def test_invalid_parameters_raise_before_the_flow_body_runs() -> None:
    ran: list[int] = []

    @flow
    def guarded(n: int) -> None:
        ran.append(n)

    with pytest.raises(ParameterError, match="n: "):
        guarded(n="not a number")  # type: ignore[arg-type]
    with pytest.raises(ParameterError):
        guarded.run(1, 2)  # type: ignore[call-arg]
    assert ran == []


# -- the text forms of a command line or a form: NAME=VALUE pairs and a JSON object ----------------


@flow
def typed(n: int, items: list[int] = [0], name: str = "a", limit: float | None = 1.0) -> None:  # noqa: B006
    """A flow whose parameters exercise coercion."""


def parse(pairs: tuple[str, ...], params_json: str | None = None) -> dict[str, Any]:
    return parse_parameters(typed.parameters, typed.validate_parameters, pairs, params_json)


def test_param_strings_are_coerced_then_json_is_tried() -> None:
    params = parse(("n=3", "items=[1, 2]", "name=[1]", "limit=null"))
    assert params == {"n": 3, "items": [1, 2], "name": "[1]", "limit": None}


def test_unknown_param_names_the_valid_ones() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter 'x' .*valid parameters: n, items"):
        parse(("x=1",), '{"n": 1}')


@pytest.mark.parametrize(
    ("pairs", "params_json", "words"),
    [
        (("n",), None, "--param 'n': expected NAME=VALUE"),
        ((), "[1, 2]", "--params-json must be a JSON object"),
        ((), "{oops", "--params-json is not valid JSON"),
    ],
)
def test_malformed_text_is_one_parameter_error(
    pairs: tuple[str, ...], params_json: str | None, words: str
) -> None:
    with pytest.raises(ParameterError) as info:
        parse(pairs, params_json)
    assert words in str(info.value)
    assert info.value.errors
