"""`@task` and `@flow`: typed, validated definitions of what to run and how.

A `Task` or `Flow` wraps the user's function with frozen, validated options; every option is
checked at decoration time and a bad one raises `DefinitionError` naming the task or flow. Calling
a task inside a flow records a call on the running flow's graph and returns a `TaskFuture`;
outside a flow it runs the plain function in-process with its retry policy. Running is the
engine's job: these classes only hand calls over to it.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from dagflow.core.context import current_flow_run, get_engine
from dagflow.core.graph import TaskFuture, slugify
from dagflow.core.params import ParameterModel
from dagflow.core.retry import RetryPolicy, timeout_seconds
from dagflow.errors import DefinitionError

if TYPE_CHECKING:
    from dagflow.core.runs import FlowRun

P = ParamSpec("P")
R = TypeVar("R")

_UNSET: Any = object()


def _name(kind: str, fn: Callable[..., Any], name: object) -> str:
    if name is None:
        name = getattr(fn, "__name__", None) or type(fn).__name__
    if not isinstance(name, str) or not name.strip():
        raise DefinitionError(f"{kind} name must be a non-empty string, got {name!r}")
    return name


def _check_callable(kind: str, fn: object) -> None:
    if isinstance(fn, (Task, Flow)):
        raise DefinitionError(f"@{kind} applied to {fn!r}, which is already a task or flow")
    if not callable(fn):
        raise DefinitionError(f"@{kind} must decorate a function, got {type(fn).__name__}: {fn!r}")
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise DefinitionError(
            f"@{kind} {getattr(fn, '__name__', fn)!r}: async functions are not supported yet; "
            "write a regular function"
        )


def _check_bool(owner: str, option: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise DefinitionError(f"{owner}: {option} must be True or False, got {value!r}")
    return value


def _check_tags(owner: str, tags: object) -> tuple[str, ...]:
    if tags is None:
        return ()
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise DefinitionError(f"{owner}: tags must be a list of strings, got {tags!r}")
    out = tuple(tags)
    if not all(isinstance(t, str) and t for t in out):
        raise DefinitionError(f"{owner}: tags must be non-empty strings, got {tags!r}")
    return out


def _check_resources(owner: str, resources: object) -> tuple[tuple[str, float], ...]:
    if resources is None:
        return ()
    if not isinstance(resources, Mapping):
        raise DefinitionError(
            f"{owner}: resources must be a dict such as {{'GPU': 1}}, got {resources!r}"
        )
    out = []
    for name, amount in resources.items():
        if not isinstance(name, str) or not name:
            raise DefinitionError(f"{owner}: resource names must be strings, got {name!r}")
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not math.isfinite(amount)
            or amount <= 0
        ):
            raise DefinitionError(
                f"{owner}: resources[{name!r}] must be a positive number, got {amount!r}"
            )
        out.append((name, float(amount)))
    return tuple(sorted(out))


RESULT_SERIALIZERS = ("cloudpickle", "json")


def _check_serializer(owner: str, serializer: object) -> str:
    if serializer not in RESULT_SERIALIZERS:
        raise DefinitionError(
            f"{owner}: result_serializer must be one of {', '.join(RESULT_SERIALIZERS)}, "
            f"got {serializer!r}"
        )
    return str(serializer)


def _check_hooks(owner: str, option: str, hooks: object) -> tuple[Callable[..., Any], ...]:
    if hooks is None:
        return ()
    items = tuple(hooks) if isinstance(hooks, (list, tuple)) else (hooks,)
    for hook in items:
        if not callable(hook):
            raise DefinitionError(f"{owner}: {option} takes callables, got {hook!r}")
    return items


def _check_optional_bool(owner: str, option: str, value: object) -> bool | None:
    if value is None:
        return None
    return _check_bool(owner, option, value)


def _check_priority(owner: str, priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise DefinitionError(f"{owner}: priority must be an int, got {priority!r}")
    return priority


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """A task's validated options."""

    name: str
    retry: RetryPolicy
    timeout: float | None
    tags: tuple[str, ...]
    resources: tuple[tuple[str, float], ...]
    priority: int
    log_prints: bool
    persist_result: bool | None = None
    result_serializer: str = "cloudpickle"
    cache_key_fn: Callable[..., Any] | None = None
    cache_expiration: float | None = None
    refresh_cache: bool = False
    on_completion: tuple[Callable[..., Any], ...] = ()
    on_failure: tuple[Callable[..., Any], ...] = ()
    on_crashed: tuple[Callable[..., Any], ...] = ()


class Task(Generic[P, R]):
    """A function that a flow runs as a node of its Dask graph, with retries and a timeout."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        retries: int = 0,
        retry_delay: Any = 0.0,
        retry_backoff: float = 1.0,
        retry_jitter: float = 0.0,
        retry_on: Any = None,
        timeout: Any = None,
        tags: Iterable[str] | None = None,
        resources: Mapping[str, float] | None = None,
        priority: int = 0,
        log_prints: bool = False,
        persist_result: bool | None = None,
        result_serializer: str = "cloudpickle",
        cache_key_fn: Callable[..., Any] | None = None,
        cache_expiration: Any = None,
        refresh_cache: bool = False,
        on_completion: Any = None,
        on_failure: Any = None,
        on_crashed: Any = None,
    ) -> None:
        _check_callable("task", fn)
        task_name = _name("task", fn, name)
        owner = f"task {task_name!r}"
        self.fn = fn
        self._raw = {
            "name": name,
            "retries": retries,
            "retry_delay": retry_delay,
            "retry_backoff": retry_backoff,
            "retry_jitter": retry_jitter,
            "retry_on": retry_on,
            "timeout": timeout,
            "tags": tags,
            "resources": resources,
            "priority": priority,
            "log_prints": log_prints,
            "persist_result": persist_result,
            "result_serializer": result_serializer,
            "cache_key_fn": cache_key_fn,
            "cache_expiration": cache_expiration,
            "refresh_cache": refresh_cache,
            "on_completion": on_completion,
            "on_failure": on_failure,
            "on_crashed": on_crashed,
        }
        if cache_key_fn is not None and not callable(cache_key_fn):
            raise DefinitionError(f"{owner}: cache_key_fn must be callable, got {cache_key_fn!r}")
        self.options = TaskOptions(
            name=task_name,
            retry=RetryPolicy.build(
                owner, retries, retry_delay, retry_backoff, retry_jitter, retry_on
            ),
            timeout=timeout_seconds(owner, timeout),
            tags=_check_tags(owner, tags),
            resources=_check_resources(owner, resources),
            priority=_check_priority(owner, priority),
            log_prints=_check_bool(owner, "log_prints", log_prints),
            persist_result=_check_optional_bool(owner, "persist_result", persist_result),
            result_serializer=_check_serializer(owner, result_serializer),
            cache_key_fn=cache_key_fn,
            cache_expiration=timeout_seconds(owner, cache_expiration),
            refresh_cache=_check_bool(owner, "refresh_cache", refresh_cache),
            on_completion=_check_hooks(owner, "on_completion", on_completion),
            on_failure=_check_hooks(owner, "on_failure", on_failure),
            on_crashed=_check_hooks(owner, "on_crashed", on_crashed),
        )
        self.slug = slugify(task_name)
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__name__ = getattr(fn, "__name__", task_name)
        self.__qualname__ = getattr(fn, "__qualname__", task_name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    @property
    def name(self) -> str:
        return self.options.name

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed (validated like the decorator's)."""
        unknown = set(changes) - set(self._raw)
        if unknown:
            raise DefinitionError(
                f"task {self.name!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"valid options: {', '.join(sorted(self._raw))}"
            )
        return Task(self.fn, **{**self._raw, **changes})

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Inside a flow: a `TaskFuture`. Outside: the function's value, with retries."""
        ctx = current_flow_run.get()
        if ctx is None:
            kwargs.pop("wait_for", None)
            return get_engine().run_task_inline(self, args, kwargs)
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
            return _map_inline(self, args, kwargs)
        return ctx.graph.add_map(self, args, kwargs, wait_for)

    def __repr__(self) -> str:
        return f"Task({self.name!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_task, (self.fn, self._raw))


def _rebuild_task(fn: Callable[..., Any], raw: dict[str, Any]) -> Task[..., Any]:
    return Task(fn, **raw)


def _map_inline(task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
    """`.map` outside a flow: call the task once per item, in this process."""
    from dagflow.core.graph import unmapped

    def is_mapped(v: Any) -> bool:
        return not isinstance(v, (unmapped, str, bytes, dict)) and isinstance(v, Iterable)

    columns = {i: list(a) for i, a in enumerate(args) if is_mapped(a)}
    kw_columns = {k: list(v) for k, v in kwargs.items() if is_mapped(v)}
    sizes = {len(c) for c in (*columns.values(), *kw_columns.values())}
    if not sizes:
        raise DefinitionError(f"task {task.name!r}: .map() needs at least one iterable argument")
    if len(sizes) > 1:
        raise DefinitionError(f"task {task.name!r}: .map() iterables differ in length")
    out = []
    for i in range(sizes.pop()):
        call_args = tuple(
            columns[j][i] if j in columns else (a.value if isinstance(a, unmapped) else a)
            for j, a in enumerate(args)
        )
        call_kwargs = {
            k: kw_columns[k][i] if k in kw_columns else (v.value if isinstance(v, unmapped) else v)
            for k, v in kwargs.items()
        }
        out.append(task(*call_args, **call_kwargs))
    return out


@dataclass(frozen=True, slots=True)
class FlowOptions:
    """A flow's validated options."""

    name: str
    version: str | None
    description: str | None
    retry: RetryPolicy
    timeout: float | None
    cluster: str | None
    log_prints: bool
    validate_parameters: bool
    persist_results: bool = False
    result_serializer: str = "cloudpickle"
    on_completion: tuple[Callable[..., Any], ...] = ()
    on_failure: tuple[Callable[..., Any], ...] = ()
    on_crashed: tuple[Callable[..., Any], ...] = ()


class Flow(Generic[P, R]):
    """A function whose task calls dagflow compiles into Dask graphs and runs as one flow run."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        version: str | None = None,
        description: str | None = None,
        retries: int = 0,
        retry_delay: Any = 0.0,
        timeout: Any = None,
        cluster: str | None = None,
        log_prints: bool = False,
        validate_parameters: bool = True,
        persist_results: bool = False,
        result_serializer: str = "cloudpickle",
        on_completion: Any = None,
        on_failure: Any = None,
        on_crashed: Any = None,
    ) -> None:
        _check_callable("flow", fn)
        flow_name = _name("flow", fn, name)
        owner = f"flow {flow_name!r}"
        if version is not None and not isinstance(version, str):
            raise DefinitionError(f"{owner}: version must be a string, got {version!r}")
        if description is not None and not isinstance(description, str):
            raise DefinitionError(f"{owner}: description must be a string, got {description!r}")
        if cluster is not None and (not isinstance(cluster, str) or not cluster.strip()):
            raise DefinitionError(
                f"{owner}: cluster must be a name such as 'local', a profile path or a scheduler "
                f"address, got {cluster!r}"
            )
        self.fn = fn
        self._raw = {
            "name": name,
            "version": version,
            "description": description,
            "retries": retries,
            "retry_delay": retry_delay,
            "timeout": timeout,
            "cluster": cluster,
            "log_prints": log_prints,
            "validate_parameters": validate_parameters,
            "persist_results": persist_results,
            "result_serializer": result_serializer,
            "on_completion": on_completion,
            "on_failure": on_failure,
            "on_crashed": on_crashed,
        }
        doc = inspect.getdoc(fn)
        self.options = FlowOptions(
            name=flow_name,
            version=version,
            description=description if description is not None else doc,
            retry=RetryPolicy.build(owner, retries, retry_delay),
            timeout=timeout_seconds(owner, timeout),
            cluster=cluster,
            log_prints=_check_bool(owner, "log_prints", log_prints),
            validate_parameters=_check_bool(owner, "validate_parameters", validate_parameters),
            persist_results=_check_bool(owner, "persist_results", persist_results),
            result_serializer=_check_serializer(owner, result_serializer),
            on_completion=_check_hooks(owner, "on_completion", on_completion),
            on_failure=_check_hooks(owner, "on_failure", on_failure),
            on_crashed=_check_hooks(owner, "on_crashed", on_crashed),
        )
        self.parameters = ParameterModel(fn, flow_name)
        self.__doc__ = doc
        self.__name__ = getattr(fn, "__name__", flow_name)
        self.__qualname__ = getattr(fn, "__qualname__", flow_name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def version(self) -> str | None:
        return self.options.version

    @property
    def description(self) -> str | None:
        return self.options.description

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (validated like the decorator's)."""
        unknown = set(changes) - set(self._raw)
        if unknown:
            raise DefinitionError(
                f"flow {self.name!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                f"valid options: {', '.join(sorted(self._raw))}"
            )
        return Flow(self.fn, **{**self._raw, **changes})

    def validate_parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Validated, coerced parameters with defaults filled in; raises `ParameterError`."""
        if self.options.validate_parameters:
            return self.parameters.validate(dict(params))
        return self.parameters.with_defaults(dict(params))

    def parameters_schema(self) -> dict[str, Any]:
        """The JSON schema of this flow's parameters."""
        return self.parameters.json_schema()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its value; raises if the run does not complete."""
        run = get_engine().run_flow(self, args, kwargs)
        return run.result()  # type: ignore[no-any-return,unused-ignore]

    def run(self, *args: P.args, **kwargs: P.kwargs) -> FlowRun:
        """Run the flow and return its `FlowRun`, whatever state it ends in."""
        return get_engine().run_flow(self, args, kwargs)  # type: ignore[no-any-return,unused-ignore]

    def resume(self, run_id: str, *, force: bool = False) -> FlowRun:
        """Finish a FAILED, CRASHED or CANCELLED run under its id, reusing persisted results."""
        return get_engine().resume_flow(self, run_id, force=force)  # type: ignore[no-any-return,unused-ignore]

    def __repr__(self) -> str:
        return f"Flow({self.name!r})"


def _options_only(kind: str, fn: object) -> None:
    if fn is not None and not callable(fn):
        raise DefinitionError(f"@{kind} must decorate a function, got {type(fn).__name__}")


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...


@overload
def task(
    fn: None = None,
    /,
    *,
    name: str | None = ...,
    retries: int = ...,
    retry_delay: Any = ...,
    retry_backoff: float = ...,
    retry_jitter: float = ...,
    retry_on: Any = ...,
    timeout: Any = ...,
    tags: Iterable[str] | None = ...,
    resources: Mapping[str, float] | None = ...,
    priority: int = ...,
    log_prints: bool = ...,
    persist_result: bool | None = ...,
    result_serializer: str = ...,
    cache_key_fn: Callable[..., Any] | None = ...,
    cache_expiration: Any = ...,
    refresh_cache: bool = ...,
    on_completion: Any = ...,
    on_failure: Any = ...,
    on_crashed: Any = ...,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Any = None, /, **options: Any) -> Any:
    """Declare a task: `@task` or `@task(retries=3, timeout=60, ...)`."""
    _options_only("task", fn)
    if fn is not None:
        return Task(fn, **options)
    _check_task_options(options)

    def decorate(f: Callable[P, R]) -> Task[P, R]:
        return Task(f, **options)

    return decorate


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...


@overload
def flow(
    fn: None = None,
    /,
    *,
    name: str | None = ...,
    version: str | None = ...,
    description: str | None = ...,
    retries: int = ...,
    retry_delay: Any = ...,
    timeout: Any = ...,
    cluster: str | None = ...,
    log_prints: bool = ...,
    validate_parameters: bool = ...,
    persist_results: bool = ...,
    result_serializer: str = ...,
    on_completion: Any = ...,
    on_failure: Any = ...,
    on_crashed: Any = ...,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Any = None, /, **options: Any) -> Any:
    """Declare a flow: `@flow` or `@flow(name=..., retries=..., cluster=...)`."""
    _options_only("flow", fn)
    if fn is not None:
        return Flow(fn, **options)
    _check_flow_options(options)

    def decorate(f: Callable[P, R]) -> Flow[P, R]:
        return Flow(f, **options)

    return decorate


_TASK_OPTIONS = set(inspect.signature(Task.__init__).parameters) - {"self", "fn"}
_FLOW_OPTIONS = set(inspect.signature(Flow.__init__).parameters) - {"self", "fn"}


def _check_task_options(options: dict[str, Any]) -> None:
    unknown = set(options) - _TASK_OPTIONS
    if unknown:
        raise DefinitionError(
            f"@task got unknown option(s) {', '.join(sorted(unknown))}; "
            f"valid options: {', '.join(sorted(_TASK_OPTIONS))}"
        )


def _check_flow_options(options: dict[str, Any]) -> None:
    unknown = set(options) - _FLOW_OPTIONS
    if unknown:
        raise DefinitionError(
            f"@flow got unknown option(s) {', '.join(sorted(unknown))}; "
            f"valid options: {', '.join(sorted(_FLOW_OPTIONS))}"
        )
