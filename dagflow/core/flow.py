"""`FlowDefinition`: a flow function with checked options and its parameter model.

What a flow *is* lives here: its options, and the pydantic model of its parameters (built once,
from the signature), which validates and coerces what a caller, the CLI or the API passes, and
describes it as a JSON schema. Running a flow is the runtime's job: `dagflow.Flow` (in
`dagflow/decorators.py`) adds `__call__`, `run` and `resume` on top of this.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Generic, ParamSpec, TypeVar

from dagflow.core.definition import Definition
from dagflow.core.options import FlowOptions
from dagflow.core.params import ParameterModel

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound="FlowDefinition[Any, Any]")


class FlowDefinition(Definition, Generic[P, R]):
    """A function whose task calls dagflow compiles into Dask graphs and runs as one flow run."""

    kind = "flow"

    def __init__(self, fn: Callable[P, R], options: FlowOptions) -> None:
        super().__init__(fn, options.name)
        self.options = options
        self.parameters = ParameterModel(fn, options.name)
        self.__doc__ = inspect.getdoc(fn)
        self._method_parameters: ParameterModel | None = None

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        """A flow defined in a class: its parameters are the method's, without `self`."""
        if obj is None:
            return self
        if self._method_parameters is None:  # built once, for every instance
            self._method_parameters = ParameterModel(functools.partial(self.fn, None), self.name)
        bound = super().__get__(obj, objtype)
        bound.parameters = self._method_parameters
        return bound

    @classmethod
    def define(cls: type[F], fn: Callable[..., Any], **values: Any) -> F:
        """Check `fn` and the decorator's options; errors name the flow."""
        values = cls.checked(fn, values)
        if values.get("description") is None and callable(fn):
            values["description"] = inspect.getdoc(fn)
        return cls(fn, FlowOptions.build(cls.owner_of(values), values))

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def version(self) -> str | None:
        return self.options.version

    @property
    def description(self) -> str | None:
        return self.options.description

    def with_options(self: F, **changes: Any) -> F:
        """A copy of this flow with some options changed (checked like the decorator's)."""
        values = {**self.options.as_dict(), **changes}
        return type(self)(self.fn, FlowOptions.build(f"flow {self.name!r}", values))

    def validate_parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, coerced parameters with defaults filled in; raises `ParameterError`."""
        if self.options.validate_parameters:
            return self.parameters.validate(dict(params))
        return self.parameters.with_defaults(dict(params))

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """A call's arguments as validated parameters (every bad field named at once)."""
        return self.validate_parameters(self.parameters.bind(args, kwargs))

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of this flow's parameters."""
        return self.parameters.json_schema()

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn, self.options))
