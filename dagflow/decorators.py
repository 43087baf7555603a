"""`@task` and `@flow`: what users decorate their functions with, and what calling the result does.

`Task` and `Flow` are the core's definitions (`core/task.py`, `core/flow.py`: options, parameters,
the graph a flow body builds) plus the calls that need the outside world:

- a task called outside any flow runs here, in this process, with its retries and timeout
  (`engine/retrying.py`), so a user's unit tests need no cluster;
- calling a flow, `flow.run(...)` and `flow.resume(run_id)` go to `runtime.py`, which picks the
  cluster, opens the run history and runs the flow (as a subflow when called inside a flow).

The runtime is imported when a flow first runs, not when a flow is defined: `import dagflow` stays
cheap, and nothing registers itself anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from dagflow.core.definition import check_decorator_options
from dagflow.core.flow import FlowDefinition
from dagflow.core.options import FlowOptions, TaskOptions
from dagflow.core.task import TaskDefinition

if TYPE_CHECKING:
    from dagflow.core.deployments import Deployment
    from dagflow.core.runs import FlowRun

P = ParamSpec("P")
R = TypeVar("R")


class Task(TaskDefinition[P, R]):
    """A task: inside a flow, calling it adds to the run's graph; outside, it runs here."""

    def _call_here(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        from dagflow.engine.retrying import call_inline

        return call_inline(self.fn, self.options, args, kwargs)

    def _map_here(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        from dagflow.engine.retrying import map_inline

        return map_inline(self, args, kwargs)


class Flow(FlowDefinition[P, R]):
    """A flow: call it for its value, `run` it for its `FlowRun`, `resume` a run of it."""

    def __init__(self, fn: Callable[P, R], options: FlowOptions) -> None:
        super().__init__(fn, options)
        if options.notify:  # each URL checked by Apprise now, not when a run fails
            from dagflow.notifications import check_urls

            check_urls(options.name, options.notify)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its value; raises if the run does not complete.

        `return_state=True` returns the `FlowRun` instead, whatever state it ends in (as `run`);
        `wait_for=[...]` (a subflow) starts it once those task futures have finished.
        """
        return_state = kwargs.pop("return_state", False)
        flow_run = self.run(*args, **kwargs)
        if return_state:
            return flow_run  # type: ignore[return-value]
        return flow_run.result()  # type: ignore[no-any-return,unused-ignore]

    def run(self, *args: P.args, **kwargs: P.kwargs) -> FlowRun:
        """Run the flow and return its `FlowRun`, whatever state it ends in."""
        from dagflow import runtime

        wait_for = kwargs.pop("wait_for", None)
        return runtime.call_flow(self, args, kwargs, wait_for)

    def resume(self, run_id: str, *, force: bool = False) -> FlowRun:
        """Finish a FAILED, CRASHED or CANCELLED run under its id, reusing persisted results."""
        from dagflow import runtime

        return runtime.resume(self, run_id, force=force)

    def to_deployment(self, name: str | None = None, **options: Any) -> Deployment:
        """This flow as a deployment: `cron=`, `interval=` (seconds or timedelta; one or a list),
        `timezone=`, `anchor=`, `parameters=`, `cluster=`, `tags=`, `description=`, `paused=`,
        `max_active_runs=` (1), `catchup=` (False), `entrypoint=` (default: where the flow is
        defined), `triggers=[...]` (`dagflow.triggers`; parameters may then be templates such
        as `"{{ event.path }}"`). Checked now, parameters against the flow's schema; serve it with
        `dagflow.serve(...)`. The name defaults to the flow's."""
        from dagflow.scheduler.definitions import build

        return build(self, name, **options)

    def serve(self, name: str | None = None, *, limit: int = 10, **options: Any) -> int:
        """`dagflow.serve(self.to_deployment(name, **options), limit=limit)`: run this flow on its
        schedules until Ctrl-C."""
        from dagflow.scheduler import serve

        return serve(self.to_deployment(name, **options), limit=limit)


def _must_be_function(kind: str, fn: object) -> None:
    if fn is not None and not callable(fn):
        from dagflow.errors import DefinitionError

        raise DefinitionError(f"@{kind} must decorate a function, got {type(fn).__name__}")


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Any = None, /, **options: Any) -> Any:
    """Declare a task: `@task` or `@task(retries=3, timeout=60, ...)`.

    The options are the fields of `dagflow.core.options.TaskOptions` (each documented there);
    every one is checked here, and a bad one raises `DefinitionError` naming the task.
    """
    _must_be_function("task", fn)
    if fn is not None:
        return Task.define(fn, **options)
    check_decorator_options("task", TaskOptions.names(), options)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        return Task.define(f, **options)

    return decorate


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Any = None, /, **options: Any) -> Any:
    """Declare a flow: `@flow` or `@flow(name=..., retries=..., cluster=...)`.

    The options are the fields of `dagflow.core.options.FlowOptions`; each is checked here.
    """
    _must_be_function("flow", fn)
    if fn is not None:
        return Flow.define(fn, **options)
    check_decorator_options("flow", FlowOptions.names(), options)

    def decorate(f: Callable[P, R]) -> Flow[P, R]:
        return Flow.define(f, **options)

    return decorate
