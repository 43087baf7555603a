"""How a task's function is attempted: under its timeout, with its prints captured, retried.

`run_with_retries` is the one retry loop of task calls: the wrapper on a worker runs it (reporting
each attempt), and so does a task called outside any flow (`call_inline`). The delay before each
retry is the policy's (`RetryPolicy.delay`, with a random draw passed in); only exceptions of the
task's `retry_on` types are retried, and the last error is raised as it is.

Timeouts: Python cannot kill a thread. `run_guarded` runs a function that has a timeout in a
helper thread and stops waiting when the time is up (`TaskTimeout`); the function itself keeps
running in that thread until it returns, and its result is discarded.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from dagflow.core.options import TaskOptions
from dagflow.core.retry import RetryPolicy
from dagflow.engine import printing
from dagflow.errors import TaskTimeout

if TYPE_CHECKING:
    from dagflow.core.task import TaskDefinition

T = TypeVar("T")
log = logging.getLogger("dagflow.runs")


def run_with_retries(
    policy: RetryPolicy,
    attempt: Callable[[int], T],
    on_retry: Callable[[int, Exception, float], None],
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
    done: int = 0,
) -> T:
    """Call `attempt(n)` for n = 1, 2, ... until it returns or the policy gives up.

    `done` attempts were made by earlier executions (a resumed run): they count against the
    retries, but the call is always attempted at least once. Before retry n, `on_retry(n, error,
    delay)` is told, then the loop sleeps `delay`.
    """
    n = 1
    while True:
        try:
            return attempt(n)
        except Exception as exc:
            if not policy.should_retry(exc, done + n - 1):
                raise
            delay = policy.delay(done + n, draw())
            on_retry(n, exc, delay)
            if delay:
                sleep(delay)
            n += 1


def run_guarded(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: TaskOptions,
    capture: bool = True,
) -> Any:
    """Call `fn` under `options.timeout` (in a helper thread), capturing its prints into the run's
    log when `options.log_prints` (and `capture`: outside a run, prints stay prints)."""
    capture = capture and options.log_prints
    if options.timeout is None:
        if not capture:
            return fn(*args, **kwargs)
        with printing.capture(True):
            return fn(*args, **kwargs)
    outcome: list[Any] = []

    def target() -> None:
        try:
            with printing.capture(capture):
                outcome.append((True, fn(*args, **kwargs)))
        except BaseException as exc:
            outcome.append((False, exc))

    ctx = contextvars.copy_context()
    thread = threading.Thread(
        target=ctx.run, args=(target,), name=f"dagflow-{options.name}", daemon=True
    )
    thread.start()
    thread.join(options.timeout)
    if thread.is_alive() or not outcome:
        raise TaskTimeout(
            f"task {options.name!r} timed out after {options.timeout:g}s "
            "(its thread keeps running until the function returns; its result is discarded)",
            task=options.name,
        )
    ok, value = outcome[0]
    if ok:
        return value
    raise value


def call_inline(
    fn: Callable[..., Any], options: TaskOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """A task called outside any flow: the plain function, here, with retries and timeout."""

    def retrying(n: int, exc: Exception, delay: float) -> None:
        retries = options.retry.retries
        log.info("task %r failed (%s); retry %d/%d in %.2fs", options.name, exc, n, retries, delay)

    return run_with_retries(
        options.retry, lambda _: run_guarded(fn, args, kwargs, options, capture=False), retrying
    )


def map_inline(
    task: TaskDefinition[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> list[Any]:
    """`.map` outside a flow: call the task once per item, in this process (the arguments read
    as inside a flow: `core.graph.mapped_values`)."""
    from dagflow.core.graph import allow_failure, map_length, mapped_values, unmapped

    def whole(value: Any) -> Any:
        return value.value if type(value) is unmapped else value

    def item(value: Any) -> Any:
        return value.future if type(value) is allow_failure else value

    columns = {i: mapped_values(a) for i, a in enumerate(args)}
    kw_columns = {k: mapped_values(v) for k, v in kwargs.items()}
    lengths = {f"argument {i}": len(c) for i, c in columns.items() if c is not None}
    lengths.update({f"argument {k!r}": len(c) for k, c in kw_columns.items() if c is not None})
    out = []
    for i in range(map_length(task.name, lengths)):
        call_args = tuple(
            whole(a) if (c := columns[j]) is None else item(c[i]) for j, a in enumerate(args)
        )
        call_kwargs = {
            k: whole(v) if (c := kw_columns[k]) is None else item(c[i]) for k, v in kwargs.items()
        }
        out.append(task(*call_args, **call_kwargs))
    return out
