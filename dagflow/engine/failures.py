"""What a failed task leaves behind, as the wrapper makes it on a worker (`wrapper.py`).

A failure is returned as a `Failure` value rather than raised, so that Dask keeps running the
downstream tasks that allow it; the driver turns it back into the task's exception. The error in
it must survive the trip: one that cannot be pickled travels as a `TaskFailed` with its type and
text, one whose text holds a secret's value travels masked. A task downstream of a failure gets
an `UpstreamFailed` naming the root failure, through the tasks that did not run either.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle

from dagflow.core.config import Masker
from dagflow.core.keys import logical
from dagflow.errors import TaskFailed, UpstreamFailed

_SIMPLE = (type(None), bool, int, float, str, bytes)


class Failure:
    """What a failed task leaves in Dask's memory instead of a value."""

    __slots__ = ("error", "key", "state", "task")

    def __init__(self, task: str, key: str, state: str, error: BaseException) -> None:
        self.task = task
        self.key = key
        self.state = state
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return (Failure, (self.task, self.key, self.state, self.error))

    def __repr__(self) -> str:
        return f"Failure({self.task!r}, {self.state}, {self.error!r})"


def error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def upstream_failed(task: str, run_id: str, upstream: Failure) -> UpstreamFailed:
    """The error of `task`, not run because of `upstream`: it names the root failure (through
    upstream tasks that did not run either) and chains its exception as `__cause__`."""
    root, root_task, root_state = upstream.error, upstream.task, upstream.state
    root_key = logical(upstream.key)
    via: tuple[str, ...] = ()
    if type(root) is UpstreamFailed and root.__cause__ is not None:
        via = (*root.via, root_key)
        root_task, root_key, root_state = root.upstream, root.cause, root.upstream_state
        root = root.__cause__
    return UpstreamFailed(
        f"task {task!r} did not run: upstream {root_task!r} ({root_key}) ended {root_state}: "
        f"{error_text(root)}",
        task=task,
        run_id=run_id,
        cause=root_key,
        upstream=root_task,
        upstream_state=root_state,
        root=root,
        via=via,
    )


def portable(error: BaseException, task: str, run_id: str) -> BaseException:
    """The error itself if it survives pickling, else a `TaskFailed` with its type and text."""
    try:
        pickle.loads(cloudpickle.dumps(error))
    except Exception:
        return TaskFailed(
            f"task {task!r} failed: {error_text(error)}",
            task=task,
            run_id=run_id,
            cause=type(error).__name__,
        )
    return error


def masked_error(error: BaseException, task: str, run_id: str, masker: Masker) -> BaseException:
    """`error`, or when its text holds a secret value, a `TaskFailed` with that text masked
    (the error travels to the driver and is raised to the flow's caller)."""
    text = error_text(error)
    hidden = masker(text)
    if hidden == text:
        return error
    return TaskFailed(
        f"task {task!r} failed: {hidden}", task=task, run_id=run_id, cause=type(error).__name__
    )


def check_picklable(value: Any, task: str) -> None:
    """Raise a clear TypeError if `value` could not leave this worker."""
    if type(value) in _SIMPLE:
        return
    buffers: list[Any] = []
    try:
        pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception:
        try:
            cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
        except Exception as exc:
            raise TypeError(
                f"task {task!r} returned a value of type {type(value).__name__} that cannot be "
                f"pickled, so it cannot leave the worker ({error_text(exc)}); return plain data "
                "or persist it and return a path"
            ) from None


def failure_value(value: Any) -> Any:
    return value.error if type(value) is Failure else value
