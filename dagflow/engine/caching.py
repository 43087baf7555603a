"""Cache keys: `cache_key_fn(context, inputs) -> str | None` decides when a task may reuse a result.

`inputs_hash` is the one most tasks want: the task's source code and its inputs, tokenized the way
Dask tokenizes (so equal data gives equal keys across processes). A cache key is computed on the
worker, where the inputs (often upstream results) are. Dask is imported when a key is first
computed, not with this module: `import dagflow` (and so every CLI command) stays without it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CacheContext:
    """What a cache key function may look at besides the inputs."""

    task_name: str
    fn: Callable[..., Any]
    run_id: str


def _source(fn: Callable[..., Any]) -> str:
    while type(fn) is functools.partial:  # a task on a method: its function's source
        fn = fn.func
    return _function_source(fn)


@functools.lru_cache(maxsize=1024)
def _function_source(fn: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"


def inputs_hash(context: CacheContext, inputs: dict[str, Any]) -> str:
    """A key from the task's source and its inputs: same code, same inputs, same key."""
    from dask.base import tokenize  # here, not at the top: `import dagflow` stays without Dask

    return f"{context.task_name}-{tokenize(_source(context.fn), inputs)}"


def bind_inputs(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The call's arguments by parameter name (defaults applied)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {"args": args, "kwargs": kwargs}
    bound.apply_defaults()
    return dict(bound.arguments)


def code_token(fn: Callable[..., Any]) -> str:
    """A token of a task's code, taken on the driver where its source file is (a function
    pickled by value reaches a worker without it)."""
    from dask.base import tokenize

    return tokenize(_source(fn))


def result_identity(
    task_name: str, code: str, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """What a result is computed from: the task's name and code, and its inputs' values.

    Stored with a persisted result; a resumed or retried run reuses the result only for a call
    whose identity is the same (same code, same inputs: upstream values included), so a changed
    flow never gets stale results.
    """
    from dask.base import tokenize

    bound = fn.args if type(fn) is functools.partial else ()  # a method's `self`
    return tokenize(task_name, code, bound, bind_inputs(fn, args, kwargs))
