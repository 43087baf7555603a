"""Flow parameters: a pydantic model built from the flow function's signature.

`ParameterModel` binds a call's arguments by name, validates and coerces them (the CLI's string
`"3"` becomes the `int` 3), and describes them as a JSON schema. Errors are collected for every bad
field and raised together as one `ParameterError`, before anything runs or is recorded.
`parse_parameters` reads the text forms a command line or a form gives (`NAME=VALUE` pairs and a
JSON object), so the CLI, the scheduler and the API server share one reading of them.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Iterable
from typing import Any

import pydantic

from dagflow.errors import DefinitionError, ParameterError


class ParameterModel:
    """Validation of one flow's parameters, built once at decoration time."""

    def __init__(self, fn: Callable[..., Any], flow_name: str) -> None:
        self.flow_name = flow_name
        self.signature = inspect.signature(fn)
        fields: dict[str, Any] = {}
        self.var_keyword: str | None = None
        for param in self.signature.parameters.values():
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                raise DefinitionError(
                    f"flow {flow_name!r}: *{param.name} is not supported; "
                    "flow parameters must have names"
                )
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                self.var_keyword = param.name
                continue
            annotation = _resolve(fn, flow_name, param)
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[param.name] = (annotation, default)
        config = pydantic.ConfigDict(
            arbitrary_types_allowed=True,
            validate_default=True,  # a dict default of a model parameter becomes the model
            extra="allow" if self.var_keyword else "forbid",
            title=flow_name,
        )
        try:
            self.model: type[pydantic.BaseModel] = pydantic.create_model(
                f"{flow_name}_parameters", __config__=config, **fields
            )
        except (TypeError, ValueError, pydantic.PydanticUserError) as exc:
            raise DefinitionError(
                f"flow {flow_name!r}: cannot build a parameter model from its signature: {exc}"
            ) from None

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map a call's arguments to parameter names, as Python would, without validating.

        A call Python would refuse (an unknown keyword, too many positional arguments, one given
        twice) raises `ParameterError` naming every such argument and every invalid or missing
        field among the others, so one error lists all that is wrong with the call.
        """
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            params, errors = self._bind_loosely(args, kwargs)
            try:
                self.validate(params)
            except ParameterError as invalid:
                errors += invalid.errors
            raise ParameterError(self.flow_name, errors) from None
        params = dict(bound.arguments)
        if self.var_keyword and self.var_keyword in params:
            params.update(params.pop(self.var_keyword))
        return params

    def _bind_loosely(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """What can be bound of a call Python refuses, and an error for each argument that
        cannot."""
        kinds = inspect.Parameter
        positional = [
            p.name
            for p in self.signature.parameters.values()
            if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)
        ]
        params: dict[str, Any] = dict(zip(positional, args, strict=False))
        errors: list[dict[str, Any]] = []
        if len(args) > len(positional):
            errors.append(
                {
                    "loc": (),
                    "msg": f"too many positional arguments (it takes {len(positional)}, "
                    f"{len(args)} were given)",
                    "type": "binding",
                }
            )
        known = self.signature.parameters
        for name, value in kwargs.items():
            if name in params:
                errors.append(
                    {
                        "loc": (name,),
                        "msg": "got multiple values (by position and by name)",
                        "type": "binding",
                    }
                )
            elif self.var_keyword or (
                name in known and known[name].kind is not kinds.POSITIONAL_ONLY
            ):
                params[name] = value
            else:
                errors.append(
                    {"loc": (name,), "msg": "unexpected keyword argument", "type": "binding"}
                )
        return params, errors

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """Validated and coerced parameters (defaults filled in); raises `ParameterError`."""
        try:
            model = self.model.model_validate(params)
        except pydantic.ValidationError as exc:
            errors = [
                {"loc": err["loc"], "msg": err["msg"], "type": err["type"]}
                for err in exc.errors(include_url=False)
            ]
            raise ParameterError(self.flow_name, errors) from None
        out = {name: getattr(model, name) for name in type(model).model_fields}
        if model.model_extra:
            out.update(model.model_extra)
        return out

    def with_defaults(self, params: dict[str, Any]) -> dict[str, Any]:
        """Fill in defaults without validating (for `validate_parameters=False`)."""
        missing = [
            name
            for name, p in self.signature.parameters.items()
            if p.default is inspect.Parameter.empty
            and p.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
            and name not in params
        ]
        if missing:
            raise ParameterError(
                self.flow_name, [{"loc": (m,), "msg": "Field required"} for m in missing]
            )
        out = {
            name: p.default
            for name, p in self.signature.parameters.items()
            if p.default is not inspect.Parameter.empty
        }
        out.update(params)
        return out

    def call_arguments(self, params: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Positional and keyword arguments to call the flow function with `params`."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for name, param in self.signature.parameters.items():
            if param.kind is inspect.Parameter.POSITIONAL_ONLY:
                args.append(params[name])
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                continue
            elif name in params:
                kwargs[name] = params[name]
        extras = {k: v for k, v in params.items() if k not in self.signature.parameters}
        kwargs.update(extras)
        return tuple(args), kwargs

    def json_schema(self) -> dict[str, Any]:
        """The parameters' JSON schema, as the CLI, the API and the pages show it."""
        try:
            return self.model.model_json_schema()
        except pydantic.PydanticInvalidForJsonSchema:
            # A parameter of an arbitrary Python type has no JSON form; describe it loosely.
            props = {
                name: {"title": name.replace("_", " ").title()}
                for name in self.signature.parameters
                if name != self.var_keyword
            }
            return {"title": self.flow_name, "type": "object", "properties": props}


def _resolve(fn: Callable[..., Any], flow_name: str, param: inspect.Parameter) -> Any:
    """A parameter's annotation as a type; a string one (`from __future__ import annotations`)
    is evaluated in the flow function's module, as `typing.get_type_hints` would."""
    annotation = param.annotation
    if annotation is inspect.Parameter.empty:
        return Any
    if not isinstance(annotation, str):
        return annotation
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    try:
        return eval(annotation, namespace)  # the user's own annotation, as Python would
    except Exception as exc:
        raise DefinitionError(
            f"flow {flow_name!r}: cannot resolve the type {annotation!r} of parameter "
            f"{param.name!r} ({type(exc).__name__}: {exc}); define it at module level, "
            "before the flow"
        ) from None


_NO: Any = object()


def parse_parameters(
    model: ParameterModel,
    validate: Callable[[dict[str, Any]], dict[str, Any]],
    pairs: Iterable[str] = (),
    params_json: str | None = None,
) -> dict[str, Any]:
    """Validated parameters from a JSON object and `NAME=VALUE` pairs (which win).

    A pair's VALUE is a string for the model to coerce ("3" for an int); a field whose string
    does not validate but whose VALUE is JSON gets the JSON value instead (`xs=[1,2]`,
    `limit=null`). Unknown names are refused, listing the flow's parameters. Every problem is a
    `ParameterError` naming the option or field.
    """
    name = model.flow_name
    given: dict[str, Any] = {}
    if params_json is not None:
        try:
            loaded = strict_json(params_json)
        except ValueError as exc:
            raise _usage(name, "--params-json", f"--params-json is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise _usage(
                name,
                "--params-json",
                f"--params-json must be a JSON object, got {type(loaded).__name__}",
            )
        given.update(loaded)
    raw: dict[str, str] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            message = f"--param {pair!r}: expected NAME=VALUE, e.g. --param n=3"
            raise _usage(name, "--param", message)
        raw[key.strip()] = value
    given.update(raw)
    _check_names(model, given)
    try:
        return validate(given)
    except ParameterError as exc:
        bad_fields = {err["loc"][0] for err in exc.errors if err.get("loc")}
        decoded = {n: v for n in bad_fields & raw.keys() if (v := _json_value(raw[n])) is not _NO}
        if not decoded:
            raise
    return validate({**given, **decoded})


def _usage(flow_name: str, where: str, message: str) -> ParameterError:
    return ParameterError(flow_name, [{"loc": (where,), "msg": message, "type": "usage"}], message)


MAX_DEPTH = 100  # nesting of parameter values read from text (JSON)


def strict_json(text: str) -> Any:
    """JSON as the standard has it: no NaN or Infinity, nested at most `MAX_DEPTH` deep.

    Raises `ValueError` with a one-line reason (a RecursionError never escapes).
    """

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number")

    depth = max_depth = 0
    for char in text:  # a cheap scan before the parser recurses
        if char in "[{":
            depth += 1
            max_depth = max(max_depth, depth)
        elif char in "]}":
            depth -= 1
    if max_depth > MAX_DEPTH:
        raise ValueError(f"nested {max_depth} deep; at most {MAX_DEPTH} levels are accepted")
    try:
        return json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise ValueError(str(exc)) from None
    except RecursionError:
        raise ValueError(f"nested too deeply (at most {MAX_DEPTH} levels)") from None


def _json_value(text: str) -> Any:
    try:
        return strict_json(text)
    except ValueError:
        return _NO


def _check_names(model: ParameterModel, given: dict[str, Any]) -> None:
    if model.var_keyword:
        return
    valid = list(model.signature.parameters)
    unknown = [n for n in given if n not in valid]
    if unknown:
        names = ("parameter " if len(unknown) == 1 else "parameters ") + ", ".join(
            repr(n) for n in unknown
        )
        accepted = f"valid parameters: {', '.join(valid)}" if valid else "it takes no parameters"
        message = f"unknown {names} for flow {model.flow_name!r}; {accepted}"
        errors = [
            {"loc": (n,), "msg": "unknown parameter", "type": "extra_forbidden"} for n in unknown
        ]
        raise ParameterError(model.flow_name, errors, message)
