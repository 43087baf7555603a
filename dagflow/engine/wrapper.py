"""The task wrapper: what a Dask worker runs for each node of a flow's graph.

`TaskCall` is called by Dask with the node's map index, its upstream values and its arguments.
It checks upstream outcomes (a failed upstream means UPSTREAM_FAILED without running, unless the
upstream came through `allow_failure`), runs the user's function in a retry loop (delay, backoff,
jitter, `retry_on`) under an optional timeout, and reports each transition through the worker's
outbox. A failure is *returned* as a `Failure` value rather than raised, so that Dask keeps running
downstream tasks that allow it; the driver turns a `Failure` back into the task's exception.

The hot path for a task that succeeds at its first attempt is: one clock read, two outbox puts,
the call, a cheap picklability check of the result. Nothing else.

Timeouts: Python cannot kill a thread. A task past its `timeout` is reported TIMED_OUT at once
and its slot in the flow moves on, but the thread running the function keeps running in the
worker process until the function returns; its result is then discarded.
"""

from __future__ import annotations

import contextvars
import pickle
import random
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import cloudpickle

from dagflow.core.context import TaskRunContext, current_task_run
from dagflow.core.definitions import Task, TaskOptions
from dagflow.core.states import StateType
from dagflow.engine import printing
from dagflow.engine.caching import CacheContext, bind_inputs
from dagflow.engine.outbox import outbox_for
from dagflow.engine.results import ResultStorage, StoredResult
from dagflow.errors import TaskFailed, TaskTimeout, UpstreamFailed

RUNNING = StateType.RUNNING.value
RETRYING = StateType.RETRYING.value
COMPLETED = StateType.COMPLETED.value
FAILED = StateType.FAILED.value
TIMED_OUT = StateType.TIMED_OUT.value
UPSTREAM_FAILED = StateType.UPSTREAM_FAILED.value
CACHED = StateType.CACHED.value

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


def _portable(error: BaseException, task: str, run_id: str) -> BaseException:
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


def _check_picklable(value: Any, task: str) -> None:
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


_STATE = ("fn", "options", "run_id", "topic", "name", "persist", "storage", "reuse")


class TaskCall:
    """The callable of every Dask task made from one task of one flow run."""

    def __init__(
        self,
        task: Task[..., Any],
        run_id: str,
        topic: str,
        name: str,
        *,
        persist: bool = False,
        storage: ResultStorage | None = None,
        reuse: dict[int, tuple[str, str]] | None = None,
    ) -> None:
        self.fn: Callable[..., Any] = task.fn
        self.options: TaskOptions = task.options
        self.run_id = run_id
        self.topic = topic
        self.name = name
        self.persist = persist
        self.storage = storage
        self.reuse = reuse
        self._payload: bytes | None = None

    # Pickled once on the driver; workers keep one instance per payload, so the per-task
    # message carries bytes, not a function to rebuild.
    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = cloudpickle.dumps(self)
        return self._payload

    def __getstate__(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in _STATE}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._payload = None

    def __reduce__(self) -> tuple[Any, ...]:
        payload = self._payload
        if payload is None:
            return (_rebuild_call, (self.__getstate__(),))
        return (_load_call, (payload,))

    def __call__(self, index: int, deps: list[Any], soft: Any, *args: Any, **kwargs: Any) -> Any:
        from distributed import get_worker

        worker = get_worker()
        box = outbox_for(worker)
        topic = self.topic
        name = self.name
        where = worker.address
        options = self.options
        key = f"{name}[{index}]"

        def report(
            state: str,
            attempt: int,
            message: str = "",
            error_type: str | None = None,
            tb: str | None = None,
            extra: tuple[Any, ...] | None = None,
        ) -> None:
            record = (
                name,
                index,
                state,
                time.time(),
                attempt,
                message,
                error_type,
                tb,
                where,
                extra,
            )
            box.put(topic, record)

        for value in deps:
            if type(value) is Failure:
                error = UpstreamFailed(
                    f"task {options.name!r} did not run: upstream {value.task!r} "
                    f"({value.key}) ended {value.state}",
                    task=options.name,
                    run_id=self.run_id,
                    cause=value.key,
                )
                report(UPSTREAM_FAILED, 0, str(error), "UpstreamFailed")
                return Failure(options.name, key, UPSTREAM_FAILED, error)
        if soft:
            args, kwargs = _unwrap_failures(args, kwargs)

        cache_key: str | None = None
        stored: StoredResult | None = None
        if self.reuse is not None or options.cache_key_fn is not None:
            try:
                hit, value, stored, cache_key, message = self._reuse(index, args, kwargs)
            except Exception as exc:
                message = f"task {options.name!r}: cache lookup failed: {error_text(exc)}"
                report(FAILED, 1, message, type(exc).__name__)
                return Failure(options.name, key, FAILED, TaskFailed(message, task=options.name))
            if hit:
                report(CACHED, 0, message, extra=_extra(stored, cache_key))
                return value

        policy = options.retry
        attempt = 1
        report(RUNNING, attempt)
        while True:
            emitter = _LogEmitter(box, self, index, where)
            token = current_task_run.set(
                TaskRunContext(self.run_id, key, options.name, attempt, emitter)
            )
            try:
                if options.timeout is None and not options.log_prints:
                    value = self.fn(*args, **kwargs)
                else:
                    value = _run_guarded(self.fn, args, kwargs, options)
                _check_picklable(value, options.name)
                stored = self._store(index, value, cache_key)
            except BaseException as exc:  # every failure becomes a state
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                if policy.should_retry(exc, attempt - 1):
                    delay = policy.delay(attempt, random.random())
                    report(
                        RETRYING,
                        attempt,
                        f"{error_text(exc)} (retry {attempt}/{policy.retries} in {delay:.2f}s)",
                        type(exc).__name__,
                    )
                    if delay:
                        time.sleep(delay)
                    attempt += 1
                    report(RUNNING, attempt)
                    continue
                state = TIMED_OUT if isinstance(exc, TaskTimeout) else FAILED
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                report(state, attempt, error_text(exc), type(exc).__name__, tb)
                return Failure(options.name, key, state, _portable(exc, options.name, self.run_id))
            finally:
                current_task_run.reset(token)
            report(COMPLETED, attempt, extra=_extra(stored, cache_key))
            return value

    def _reuse(self, index: int, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        """(hit, value, stored, cache_key, message): a result from an earlier attempt or cache."""
        storage = self.storage
        assert storage is not None
        if self.reuse is not None and index in self.reuse:
            location, serializer = self.reuse[index]
            value = storage.read_location(location, serializer)
            return (
                True,
                value,
                StoredResult(location, 0, serializer),
                None,
                "result reused from an earlier attempt",
            )
        fn = self.options.cache_key_fn
        if fn is None:
            return False, None, None, None, ""
        cache_key = fn(
            CacheContext(self.options.name, self.fn, self.run_id),
            bind_inputs(self.fn, args, kwargs),
        )
        if cache_key is None:
            return False, None, None, None, ""
        if not isinstance(cache_key, str):
            raise TypeError(f"cache_key_fn returned {type(cache_key).__name__}, not a str")
        if self.options.refresh_cache:
            return False, None, None, cache_key, ""
        hit, value, stored = storage.cache_lookup(cache_key)
        return hit, value, stored, cache_key, "result taken from the cache" if hit else ""

    def _store(self, index: int, value: Any, cache_key: str | None) -> StoredResult | None:
        if self.storage is None:
            return None
        serializer = self.options.result_serializer
        if cache_key is not None:
            return self.storage.cache_store(
                cache_key, value, serializer, self.options.cache_expiration
            )
        if self.persist:
            return self.storage.write(f"{self.run_id}/{self.name}-{index}", value, serializer)
        return None


def _extra(stored: StoredResult | None, cache_key: str | None) -> tuple[Any, ...] | None:
    if stored is None and cache_key is None:
        return None
    if stored is None:
        return (None, None, None, cache_key)
    return (stored.location, stored.size, stored.serializer, cache_key)


def _rebuild_call(state: dict[str, Any]) -> TaskCall:
    call = TaskCall.__new__(TaskCall)
    call.__setstate__(state)
    return call


_calls: dict[bytes, TaskCall] = {}
_calls_lock = threading.Lock()


def _load_call(payload: bytes) -> TaskCall:
    call = _calls.get(payload)
    if call is None:
        call = pickle.loads(payload)
        call._payload = payload
        with _calls_lock:
            if len(_calls) > 256:
                _calls.clear()
            _calls[payload] = call
    return call


class _LogEmitter:
    """Ships a task's log records through the worker's outbox."""

    __slots__ = ("box", "call", "index", "where")

    def __init__(self, box: Any, call: TaskCall, index: int, where: str) -> None:
        self.box = box
        self.call = call
        self.index = index
        self.where = where

    def __call__(self, level: int, message: str) -> None:
        self.box.put(
            self.call.topic,
            ("log", self.call.name, self.index, level, time.time(), message, self.where),
        )


def _run_guarded(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], options: TaskOptions
) -> Any:
    """Run `fn` capturing prints and/or under a timeout (in a helper thread)."""
    if options.timeout is None:
        with printing.capture(options.log_prints):
            return fn(*args, **kwargs)
    outcome: list[Any] = []

    def target() -> None:
        try:
            with printing.capture(options.log_prints):
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


def _unwrap_failures(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """Replace each failed upstream received through `allow_failure` with its exception."""

    def swap(value: Any) -> Any:
        kind = type(value)
        if kind is Failure:
            return value.error
        if kind is list:
            return [swap(v) for v in value]
        if kind is tuple:
            return tuple(swap(v) for v in value)
        if kind is dict:
            return {k: swap(v) for k, v in value.items()}
        if kind is set:
            return {swap(v) for v in value}
        return value

    return swap(args), swap(kwargs)
