"""The task wrapper: what a Dask worker runs for each node of a flow's graph.

`TaskCall` is called by Dask with the node's map index, its upstream values and its arguments.
It checks upstream outcomes (a failed upstream means UPSTREAM_FAILED without running, unless the
upstream came through `allow_failure`), reuses a cached or earlier result when it may, runs the
user's function through `retrying.run_with_retries` (timeout, retries), persists the result when
asked, and sends a `Report` of each transition through the worker's outbox. A failure is
*returned* as a `Failure` value rather than raised, so that Dask keeps running downstream tasks
that allow it; the driver turns a `Failure` back into the task's exception (`failures.py`).

The hot path for a task that succeeds at its first attempt is: one clock read, two outbox puts,
the call, a cheap picklability check of the result. Nothing else. A worker imports this module and
what it needs (core, cloudpickle, fsspec when results are stored), never the store's database code.
"""

from __future__ import annotations

import logging
import pickle
import threading
import time
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from dagflow.core.config import EMPTY, RunConfig
from dagflow.core.context import TaskRunContext, current_task_run
from dagflow.core.options import TaskOptions
from dagflow.core.reports import Report, ResultInfo
from dagflow.core.reuse import NOT_REUSED, REUSED, Earlier
from dagflow.core.states import StateType
from dagflow.core.text import storable
from dagflow.core.walk import transform
from dagflow.engine.caching import CacheContext, bind_inputs, code_token, result_identity
from dagflow.engine.failures import (
    Failure,
    check_picklable,
    error_text,
    failure_value,
    masked_error,
    portable,
    upstream_failed,
)
from dagflow.engine.logs import DEFAULT_LOG_LIMITS, LogLimits, TaskLog
from dagflow.engine.outbox import ChunkBox, Outbox, outbox_for
from dagflow.engine.retrying import run_guarded, run_with_retries
from dagflow.engine.shipping import dumps, shipped
from dagflow.errors import TaskFailed, TaskTimeout

if TYPE_CHECKING:
    from dagflow.core.graph import Task
    from dagflow.engine.results import ResultStorage, StoredResult

PENDING = StateType.PENDING.value
RUNNING = StateType.RUNNING.value
RETRYING = StateType.RETRYING.value
COMPLETED = StateType.COMPLETED.value
FAILED = StateType.FAILED.value
TIMED_OUT = StateType.TIMED_OUT.value
UPSTREAM_FAILED = StateType.UPSTREAM_FAILED.value
CACHED = StateType.CACHED.value


def _give_back(held: list[Any]) -> None:
    from dagflow.engine import slots

    slots.give_back(held)


_STATE = (
    "fn",
    "options",
    "run_id",
    "topic",
    "name",
    "persist",
    "storage",
    "earlier",
    "force",
    "spent_retries",
    "code",
    "log_limits",
    "config",
    "limits",
)


class TaskCall:
    """The callable of every Dask task made from one task of one flow run."""

    def __init__(
        self,
        task: Task,
        run_id: str,
        topic: str,
        name: str,
        *,
        persist: bool = False,
        storage: ResultStorage | None = None,
        earlier: dict[int, Earlier] | None = None,
        force: bool = False,
        spent_retries: bool = False,
        log_limits: LogLimits = DEFAULT_LOG_LIMITS,
        config: RunConfig = EMPTY,
    ) -> None:
        self.fn: Callable[..., Any] = task.fn
        self.options: TaskOptions = task.options
        self.run_id = run_id
        self.topic = topic
        self.name = name
        self.persist = persist
        self.storage = storage
        self.earlier = earlier  # what earlier executions left, by index (a resumed/retried run)
        self.force = force  # reuse earlier results even if the code or inputs changed
        self.spent_retries = spent_retries  # earlier attempts count against the retries
        self.code = code_token(task.fn) if persist or earlier else ""
        self.log_limits = log_limits
        # The run's variables and secrets travel inside the payload (pickled once per task per
        # run), so a worker that cannot reach the database has them; nothing records them.
        self.config = config
        self.limits = config.limits_of(task.options.tags)  # (tag, N): slots to take first
        self.by_reference = False  # the function travels as module + name (`shipping.py`)
        self._payload: bytes | None = None

    # Pickled once on the driver; workers keep one instance per payload, so the per-task
    # message carries bytes, not a function to rebuild.
    def payload(self) -> bytes:
        if self._payload is None:
            self._payload = dumps(self)
        return self._payload

    def __getstate__(self) -> dict[str, Any]:
        state = {k: getattr(self, k) for k in _STATE}
        state["fn"] = shipped(self.fn, self.by_reference)
        return state

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
        return self.execute(outbox_for(worker), worker.address, index, deps, soft, args, kwargs)

    def killed(self, box: Outbox | ChunkBox, where: str, index: int, deaths: int, last: str) -> Any:
        """Item `index` killed each of the `deaths` workers that ran it: it ends FAILED with
        `KilledWorker` without running again, so that its chunk's other items complete."""
        from types import SimpleNamespace

        from distributed.scheduler import KilledWorker

        key = f"{self.name}[{index}]"
        last_worker: Any = SimpleNamespace(address=last)  # all that KilledWorker's text reads
        error = KilledWorker(f"{self.options.name}[{index}]", last_worker, deaths - 1)
        report = Report(self.name, index, FAILED, time.time(), 1, where, error_text(error),
                        "KilledWorker")  # fmt: skip
        box.put(self.topic, report)
        return Failure(self.options.name, key, FAILED, error)

    def execute(
        self,
        box: Outbox | ChunkBox,
        where: str,
        index: int,
        deps: list[Any],
        soft: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Run item `index` and report through `box`; returns its value or a `Failure`."""
        topic = self.topic
        name = self.name
        options = self.options
        key = f"{name}[{index}]"
        masker = self.config.masker

        def report(
            state: str,
            attempt: int,
            message: str = "",
            error_type: str | None = None,
            tb: str | None = None,
            result: ResultInfo | None = None,
        ) -> None:
            if message and not message.isascii():
                message = storable(message)
            if tb is not None and not tb.isascii():
                tb = storable(tb)
            if masker is not None:
                message = masker(message)
                tb = masker.optional(tb)
            box.put(
                topic,
                Report(name, index, state, time.time(), attempt, where, message, error_type, tb,
                       result),
            )  # fmt: skip

        for value in deps:
            if type(value) is Failure:
                error = upstream_failed(options.name, self.run_id, value)
                report(UPSTREAM_FAILED, 0, str(error), "UpstreamFailed")
                return Failure(options.name, key, UPSTREAM_FAILED, error)
        if soft:
            args, kwargs = transform((args, kwargs), failure_value)

        earlier = self.earlier.get(index) if self.earlier is not None else None
        try:
            found = self._lookup(index, args, kwargs, earlier)
        except Exception as exc:
            message = f"task {options.name!r}: cache lookup failed: {error_text(exc)}"
            report(FAILED, 1, message, type(exc).__name__)
            return Failure(options.name, key, FAILED, TaskFailed(message, task=options.name))
        if found.hit:
            report(CACHED, 0, found.message, result=found.result)
            return found.value

        emitter = TaskLog(box, topic, name, index, where, self.log_limits, masker)
        fn = self.fn
        plain = options.timeout is None and not options.log_prints
        made = [0]  # the attempt in progress, for the report of a final failure
        limits = self.limits
        held: list[Any] = []  # concurrency slots this execution holds (`slots.py`)

        def waiting(message: str) -> None:
            n = made[0]
            if n == 1:  # still PENDING: it stays so, saying why
                report(PENDING, n, message)
            emitter(logging.INFO, f"[dagflow] {message}")

        def attempt(n: int) -> Any:
            made[0] = n
            if limits and not held:
                from dagflow.engine import slots

                held.extend(slots.take(limits, waiting))
            report(RUNNING, n, found.message if n == 1 else "")
            token = current_task_run.set(
                TaskRunContext(self.run_id, key, options.name, n, emitter, self.config)
            )
            try:
                value = fn(*args, **kwargs) if plain else run_guarded(fn, args, kwargs, options)
                check_picklable(value, options.name)
                return value, n, self._store(index, value, found.cache_key, found.identity)
            finally:
                current_task_run.reset(token)

        def retrying(n: int, exc: Exception, delay: float) -> None:
            message = f"{error_text(exc)} (retry {n}/{options.retry.retries} in {delay:.2f}s)"
            report(RETRYING, n, message, type(exc).__name__)
            if held:  # nobody waits for a slot while this task sleeps
                _give_back(held)

        prior = earlier.attempts if earlier is not None and self.spent_retries else 0
        try:
            try:
                value, n, result = run_with_retries(options.retry, attempt, retrying, done=prior)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:  # every other failure becomes a state
                emitter.close()
                state = TIMED_OUT if isinstance(exc, TaskTimeout) else FAILED
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                report(state, made[0] or 1, error_text(exc), type(exc).__name__, tb)
                shown = portable(exc, options.name, self.run_id)
                if masker is not None:
                    shown = masked_error(shown, options.name, self.run_id, masker)
                return Failure(options.name, key, state, shown)
            emitter.close()
            report(COMPLETED, n, result=result)
            return value
        finally:
            if held:  # after the final report: recorded times never show N+1 at once
                _give_back(held)

    def _lookup(
        self, index: int, args: tuple[Any, ...], kwargs: dict[str, Any], earlier: Earlier | None
    ) -> _Found:
        """An earlier execution's result (same code and inputs), or a cache entry, if any."""
        options = self.options
        storage = self.storage
        reusable = earlier is not None and earlier.location is not None
        identity = None
        if self.persist or (reusable and not self.force):
            identity = result_identity(options.name, self.code, self.fn, args, kwargs)
        note = ""
        if self.persist and storage is not None:
            found, value, stored = storage.read_existing(
                f"{self.run_id}/{self.name}-{index}", options.result_serializer
            )
            if found:  # this very key ran before: its result was lost with a worker
                message = "result reloaded from storage: its earlier computation was lost"
                return _Found(True, value, _result(stored, None, identity), None, identity, message)
        if earlier is not None and earlier.location is not None and storage is not None:
            if self.force or identity == earlier.identity:
                serializer = earlier.serializer or "cloudpickle"
                try:
                    value = storage.read_location(earlier.location, serializer)
                except (OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
                    note = f"its earlier result could not be read ({error_text(exc)}); running it"
                else:
                    reused = ResultInfo(earlier.location, None, serializer, None, earlier.identity)
                    return _Found(True, value, reused, None, earlier.identity, REUSED)
            else:
                note = NOT_REUSED
        fn = options.cache_key_fn
        if fn is None or storage is None:
            return _Found(False, None, None, None, identity, note)
        cache_key = fn(
            CacheContext(options.name, self.fn, self.run_id), bind_inputs(self.fn, args, kwargs)
        )
        if cache_key is None:
            return _Found(False, None, None, None, identity, note)
        if not isinstance(cache_key, str):
            raise TypeError(f"cache_key_fn returned {type(cache_key).__name__}, not a str")
        if options.refresh_cache:
            return _Found(False, None, None, cache_key, identity, note)
        hit, value, stored = storage.cache_lookup(cache_key)
        if not hit:
            return _Found(False, None, None, cache_key, identity, note)
        info = _result(stored, cache_key, None)
        return _Found(True, value, info, cache_key, identity, "result taken from the cache")

    def _store(
        self, index: int, value: Any, cache_key: str | None, identity: str | None
    ) -> ResultInfo | None:
        if self.storage is None:
            return None
        serializer = self.options.result_serializer
        stored = None
        if cache_key is not None:
            stored = self.storage.cache_store(
                cache_key, value, serializer, self.options.cache_expiration
            )
        elif self.persist:
            stored = self.storage.write(f"{self.run_id}/{self.name}-{index}", value, serializer)
        return _result(stored, cache_key, identity)


class _Found(NamedTuple):
    """What `_lookup` found: a result to return instead of running (`hit`), or what to run with."""

    hit: bool
    value: Any
    result: ResultInfo | None
    cache_key: str | None
    identity: str | None
    message: str  # for the CACHED report, or a note on the first RUNNING one


def _result(
    stored: StoredResult | None, cache_key: str | None, identity: str | None
) -> ResultInfo | None:
    if stored is None and cache_key is None:
        return None
    if stored is None:
        return ResultInfo(None, None, None, cache_key, identity)
    return ResultInfo(stored.location, stored.size, stored.serializer, cache_key, identity)


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
