"""Task and flow options: each one's name, type, default and check, declared once.

`TaskOptions` and `FlowOptions` are frozen dataclasses whose fields *are* the decorator options:
a field's type is the option's validated type, its default the option's default, and its metadata
the function that checks and normalises what a user wrote (`check(owner, option, value)`, raising
`DefinitionError` that names the task or flow and the option). `build` runs every check, refuses
unknown names, and derives the retry policy, so `@task(...)`, `with_options(...)` and unpickling
all go through the same code. A check accepts its own output, so rebuilding from validated
options is a no-op: that is how `with_options` re-checks a copy.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dagflow.core.notify import Notifier, check_notify
from dagflow.core.retry import (
    RetryPolicy,
    backoff_option,
    delays_option,
    exception_types,
    jitter_option,
    positive_seconds,
    retries_option,
)
from dagflow.errors import DefinitionError

Check = Callable[[str, str, Any], Any]
Hooks = tuple[Callable[..., Any], ...]
RESULT_SERIALIZERS = ("cloudpickle", "json")
MAX_NAME_LENGTH = 200  # names are stored in 255-character columns, with room for a key suffix


def option(default: Any, check: Check, doc: str) -> Any:
    """Declare an option: a dataclass field carrying its check and one line of documentation."""
    return field(default=default, metadata={"check": check, "doc": doc})


# ------------------------------------------------------------------------------- checks


def check_name(owner: str, option_name: str, value: Any) -> str:
    kind = owner.split(" ", 1)[0]
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"{kind} name must be a non-empty string, got {value!r}")
    if len(value) > MAX_NAME_LENGTH:
        raise DefinitionError(
            f"{kind} name must be at most {MAX_NAME_LENGTH} characters, got {len(value)}"
            f" ({value[:40]!r}...)"
        )
    return value


def check_bool(owner: str, option_name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise DefinitionError(f"{owner}: {option_name} must be True or False, got {value!r}")
    return value


def check_optional_bool(owner: str, option_name: str, value: Any) -> bool | None:
    return None if value is None else check_bool(owner, option_name, value)


def check_text(owner: str, option_name: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise DefinitionError(f"{owner}: {option_name} must be a string, got {value!r}")
    return value


def check_count(owner: str, option_name: str, value: Any) -> int:
    return retries_option(value, f"{owner}: {option_name}")


def check_int(owner: str, option_name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DefinitionError(f"{owner}: {option_name} must be an int, got {value!r}")
    return value


def check_batch_size(owner: str, option_name: str, value: Any) -> int | None:
    """None (adaptive), or a fixed number of `.map` items per Dask task (1: one task each)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DefinitionError(
            f"{owner}: {option_name} must be an int >= 1 (1 runs one Dask task per item) or "
            f"None (adaptive), got {value!r}"
        )
    return value


def check_backoff(owner: str, option_name: str, value: Any) -> float:
    return backoff_option(value, f"{owner}: {option_name}")


def check_jitter(owner: str, option_name: str, value: Any) -> float:
    return jitter_option(value, f"{owner}: {option_name}")


def check_seconds(owner: str, option_name: str, value: Any) -> float | None:
    """None, or a positive number of seconds / timedelta (`timeout`, `cache_expiration`)."""
    return positive_seconds(value, f"{owner}: {option_name}")


def check_delays(owner: str, option_name: str, value: Any) -> tuple[float, ...]:
    return delays_option(value, f"{owner}: {option_name}")


def check_retry_on(owner: str, option_name: str, value: Any) -> tuple[type[BaseException], ...]:
    return exception_types(f"{owner}: {option_name}", value)


def check_tags(owner: str, option_name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise DefinitionError(f"{owner}: {option_name} must be a list of strings, got {value!r}")
    out = tuple(value)
    if not all(isinstance(t, str) and t for t in out):
        raise DefinitionError(f"{owner}: {option_name} must be non-empty strings, got {value!r}")
    return out


def check_resources(owner: str, option_name: str, value: Any) -> tuple[tuple[str, float], ...]:
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)  # already normalised
    if not isinstance(value, Mapping):
        raise DefinitionError(
            f"{owner}: {option_name} must be a dict such as {{'GPU': 1}}, got {value!r}"
        )
    out = []
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise DefinitionError(f"{owner}: {option_name} names must be strings, got {name!r}")
        if (
            isinstance(amount, bool)
            or not isinstance(amount, (int, float))
            or not math.isfinite(amount)
            or amount <= 0
        ):
            raise DefinitionError(
                f"{owner}: {option_name}[{name!r}] must be a positive number, got {amount!r}"
            )
        out.append((name, float(amount)))
    return tuple(sorted(out))


def check_serializer(owner: str, option_name: str, value: Any) -> str:
    if value not in RESULT_SERIALIZERS:
        raise DefinitionError(
            f"{owner}: {option_name} must be one of {', '.join(RESULT_SERIALIZERS)}, got {value!r}"
        )
    return str(value)


def check_callable(owner: str, option_name: str, value: Any) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise DefinitionError(f"{owner}: {option_name} must be callable, got {value!r}")
    return value


def check_hooks(owner: str, option_name: str, value: Any) -> Hooks:
    if value is None:
        return ()
    items = tuple(value) if isinstance(value, (list, tuple)) else (value,)
    for hook in items:
        if not callable(hook):
            raise DefinitionError(f"{owner}: {option_name} takes callables, got {hook!r}")
    return items


def check_cluster(owner: str, option_name: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DefinitionError(
            f"{owner}: {option_name} must be a name such as 'local', a profile path or a "
            f"scheduler address, got {value!r}"
        )
    return value


# ------------------------------------------------------------------------------- the options

Opts = TypeVar("Opts", bound="_Options")


@dataclass(frozen=True, slots=True)
class _Options:
    """What both option sets share: building from user values, and the options' names."""

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def build(cls: type[Opts], owner: str, values: Mapping[str, Any]) -> Opts:
        """Checked options from what a user wrote (missing options take their defaults)."""
        valid = cls.names()
        unknown = sorted(set(values) - set(valid))
        if unknown:
            raise DefinitionError(
                f"{owner}: unknown option(s) {', '.join(unknown)}; "
                f"valid options: {', '.join(sorted(valid))}"
            )
        checked = {}
        for f in dataclasses.fields(cls):
            if f.init:
                checked[f.name] = f.metadata["check"](owner, f.name, values.get(f.name, f.default))
        return cls(**checked)

    def as_dict(self) -> dict[str, Any]:
        """The options as keyword arguments of the decorator (what `with_options` starts from)."""
        return {name: getattr(self, name) for name in self.names()}


@dataclass(frozen=True, slots=True)
class TaskOptions(_Options):
    """A task's options, checked; `retry` is derived from the retry options."""

    name: str = option("task", check_name, "display name (default: the function's name)")
    retries: int = option(0, check_count, "how many times to retry after a failure")
    retry_delay: tuple[float, ...] = option(
        (0.0,), check_delays, "seconds (or timedelta, or a list: one per retry) before a retry"
    )
    retry_backoff: float = option(1.0, check_backoff, "multiply the delay by this per retry")
    retry_jitter: float = option(0.0, check_jitter, "spread each delay by +/- this fraction")
    retry_on: tuple[type[BaseException], ...] = option(
        (Exception,), check_retry_on, "exception types that are retried"
    )
    timeout: float | None = option(None, check_seconds, "seconds (or timedelta) per attempt")
    tags: tuple[str, ...] = option((), check_tags, "labels kept with the task")
    resources: tuple[tuple[str, float], ...] = option(
        (), check_resources, "Dask worker resources, e.g. {'GPU': 1}"
    )
    priority: int = option(0, check_int, "higher runs first when workers are busy")
    batch_size: int | None = option(
        None, check_batch_size, ".map items per Dask task (1: one each; default: adaptive)"
    )
    log_prints: bool = option(False, check_bool, "turn print() into run log records")
    persist_result: bool | None = option(
        None, check_optional_bool, "write the result to result storage (default: the flow's)"
    )
    result_serializer: str = option("cloudpickle", check_serializer, "cloudpickle or json")
    cache_key_fn: Callable[..., Any] | None = option(
        None, check_callable, "fn(context, inputs) -> str or None: reuse results by key"
    )
    cache_expiration: float | None = option(
        None, check_seconds, "seconds (or timedelta) a cache entry stays valid"
    )
    refresh_cache: bool = option(False, check_bool, "run anyway and replace the cache entry")
    on_completion: Hooks = option((), check_hooks, "hook(task, task_run) when it completes")
    on_failure: Hooks = option((), check_hooks, "hook(task, task_run) when it fails")
    on_crashed: Hooks = option((), check_hooks, "hook(task, task_run) when it crashes")
    retry: RetryPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        owner = f"task {self.name!r}"
        if len(self.retry_delay) > 1 and self.retry_backoff != 1:
            raise DefinitionError(
                f"{owner}: retry_backoff applies to a single retry_delay, not to a list; "
                "write each delay in the list instead"
            )
        policy = RetryPolicy(
            self.retries, self.retry_delay, self.retry_backoff, self.retry_jitter, self.retry_on
        )
        object.__setattr__(self, "retry", policy)


@dataclass(frozen=True, slots=True)
class FlowOptions(_Options):
    """A flow's options, checked; `retry` is derived from `retries` and `retry_delay`."""

    name: str = option("flow", check_name, "display name (default: the function's name)")
    version: str | None = option(None, check_text, "stored with every run")
    description: str | None = option(None, check_text, "default: the docstring")
    retries: int = option(0, check_count, "re-run the whole body this many times if it fails")
    retry_delay: tuple[float, ...] = option(
        (0.0,), check_delays, "seconds (or a list) before a flow retry"
    )
    timeout: float | None = option(None, check_seconds, "the whole run's time limit")
    cluster: str | None = option(None, check_cluster, "the default cluster for this flow")
    log_prints: bool = option(False, check_bool, "turn print() in the body into log records")
    validate_parameters: bool = option(True, check_bool, "validate and coerce parameters")
    persist_results: bool = option(False, check_bool, "persist every task's result")
    result_serializer: str = option("cloudpickle", check_serializer, "cloudpickle or json")
    on_completion: Hooks = option((), check_hooks, "hook(flow, flow_run) when it completes")
    on_failure: Hooks = option((), check_hooks, "hook(flow, flow_run) when it fails")
    on_crashed: Hooks = option((), check_hooks, "hook(flow, flow_run) when it crashes")
    notify: tuple[Notifier, ...] = option(
        (), check_notify, "Apprise URLs (or Notifier(url, on=[states])) told of its runs' states"
    )
    retry: RetryPolicy = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry", RetryPolicy(self.retries, self.retry_delay))
