"""What tasks and flows have in common: a user's function, checked once, that reads like it.

`Definition` is the base of `TaskDefinition` and `FlowDefinition`. It refuses what cannot be
decorated (a non-callable, an async function, something already decorated), names the definition
after its function unless given a name, and copies the function's name, docstring and module so
that the decorated object reads like the function in editors, tracebacks and `help()`.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dagflow.errors import DefinitionError


class Definition:
    """A decorated function: `fn`, and the function's identity copied onto the definition."""

    kind = "definition"  # "task" or "flow", as messages name it

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        self.fn = fn
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    def __get__(self, obj: object, objtype: type | None = None) -> Any:
        """A task or flow defined in a class binds `self` as a function does: `obj.method`
        is the same task or flow with `obj` as its first argument."""
        if obj is None:
            return self
        bound = copy.copy(self)
        bound.fn = functools.partial(self.fn, obj)
        bound.__self__ = obj  # type: ignore[attr-defined]
        return bound

    @classmethod
    def checked(cls, fn: object, values: dict[str, Any]) -> dict[str, Any]:
        """Refuse `fn` if it cannot be decorated; fill in the name from the function."""
        kind = cls.kind
        if isinstance(fn, Definition):
            raise DefinitionError(f"@{kind} applied to {fn!r}, which is already a task or flow")
        if not callable(fn):
            raise DefinitionError(
                f"@{kind} must decorate a function, got {type(fn).__name__}: {fn!r}"
            )
        if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
            raise DefinitionError(
                f"@{kind} {getattr(fn, '__name__', fn)!r}: async functions are not supported "
                "yet; write a regular function"
            )
        if values.get("name") is None:
            values = {**values, "name": getattr(fn, "__name__", None) or type(fn).__name__}
        return values

    @classmethod
    def owner_of(cls, values: Mapping[str, Any]) -> str:
        """How messages name the definition being built: `task 'extract'`."""
        name = values.get("name")
        return f"{cls.kind} {name!r}" if isinstance(name, str) else cls.kind


def check_decorator_options(kind: str, names: Iterable[str], values: Mapping[str, Any]) -> None:
    """`@task(colour=...)`: name the unknown options and the valid ones, at decoration."""
    valid = set(names)
    unknown = set(values) - valid
    if unknown:
        raise DefinitionError(
            f"@{kind} got unknown option(s) {', '.join(sorted(unknown))}; "
            f"valid options: {', '.join(sorted(valid))}"
        )
