"""`TaskDefinition`: a function with checked options, and what calling it inside a flow means.

Inside a running flow (the flow body's thread has a `FlowRunContext`), calling a task, `.submit`
or `.map` adds a call to the run's graph and returns `TaskFuture`s: nothing runs yet. What a call
outside any flow does (run the plain function here, with its retries) is an effect, so it is not
decided here: `dagflow.Task` (in `dagflow/decorators.py`) fills in `_call_here` / `_map_here`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Generic, ParamSpec, TypeVar

from dagflow.core.context import current_flow_run
from dagflow.core.definition import Definition
from dagflow.core.graph import TaskFuture
from dagflow.core.keys import slugify
from dagflow.core.options import TaskOptions
from dagflow.errors import DefinitionError

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T", bound="TaskDefinition[Any, Any]")


class TaskDefinition(Definition, Generic[P, R]):
    """A function that a flow runs as a node of its Dask graph, with its checked options."""

    kind = "task"

    def __init__(self, fn: Callable[P, R], options: TaskOptions) -> None:
        super().__init__(fn, options.name)
        self.options = options
        self.slug = slugify(options.name)

    @classmethod
    def define(cls: type[T], fn: Callable[..., Any], **values: Any) -> T:
        """Check `fn` and the decorator's options; errors name the task."""
        values = cls.checked(fn, values)
        return cls(fn, TaskOptions.build(cls.owner_of(values), values))

    @property
    def name(self) -> str:
        return self.options.name

    def with_options(self: T, **changes: Any) -> T:
        """A copy of this task with some options changed (checked like the decorator's)."""
        values = {**self.options.as_dict(), **changes}
        return type(self)(self.fn, TaskOptions.build(f"task {self.name!r}", values))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Inside a flow: a `TaskFuture`. Outside: the function's value, with retries."""
        ctx = current_flow_run.get()
        if ctx is None:
            kwargs.pop("wait_for", None)
            return self._call_here(args, kwargs)
        wait_for: Any = kwargs.pop("wait_for", ())
        return ctx.graph.add_call(self, args, kwargs, wait_for)

    def submit(self, *args: Any, wait_for: Iterable[Any] = (), **kwargs: Any) -> TaskFuture[R]:
        """Add a call to the running flow and return its future (what calling does in a flow)."""
        ctx = current_flow_run.get()
        if ctx is None:
            raise DefinitionError(
                f"task {self.name!r}: .submit() works inside a flow; call the task directly "
                "to run it here"
            )
        return ctx.graph.add_call(self, args, kwargs, wait_for)

    def map(self, *args: Any, wait_for: Iterable[Any] = (), **kwargs: Any) -> list[TaskFuture[R]]:
        """One call per item of the iterable arguments (`unmapped(x)` passes x to every item)."""
        ctx = current_flow_run.get()
        if ctx is None:
            return self._map_here(args, kwargs)
        return ctx.graph.add_map(self, args, kwargs, wait_for)

    def _call_here(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        raise DefinitionError(f"task {self.name!r} can only be called inside a flow")

    def _map_here(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        raise DefinitionError(f"task {self.name!r} can only be mapped inside a flow")

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.fn, self.options))
