"""The compiler: a wave of pending `Call`s becomes one `HighLevelGraph`, submitted in one message.

Each call becomes a `CallLayer` (see `layers.py`); arguments holding futures are turned into Dask
task-spec form (`TaskRef`, `List`, `Tuple`, `Set`, `Dict`), plain values pass through untouched.
Per-call options become layer annotations: `priority`, `resources`, and `dagflow_run` so that
scheduler-side code can tell which run a task belongs to. One `TaskCall` is made per task per
run; its bytes are pickled once here and shared by every key of that task.

A mapped call may run in chunks (`engine/chunks.py`): the attempt says how each call is cut
(`compile(calls, chunks)`). The compiler remembers where every chunked item lives, so that a
later reference to item i becomes an inlined `pick(TaskRef(chunk), offset)` instead of a
`TaskRef` to a key that does not exist. Maps fused into a chunked map (`compile(calls, chunks,
fused)`, see `core/fusion.py`) add no layer: they run in their head's chunks, and an item of
theirs is read as `pick_stage(TaskRef(chunk), stage, offset)`.
"""

from __future__ import annotations

import bisect
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

# Dict, Set and Tuple are not re-exported by dask.task_spec (yet); they are the same classes.
from dask._task_spec import Dict, List, Set, TaskRef, Tuple
from dask._task_spec import Task as SpecTask
from dask.highlevelgraph import HighLevelGraph

from dagflow.core.config import EMPTY, RunConfig
from dagflow.core.cycles import check_no_cycle
from dagflow.core.fusion import stages_of
from dagflow.core.graph import (
    Call,
    Column,
    Refs,
    Task,
    TaskFuture,
    allow_failure,
    collect_refs,
    unmapped,
)
from dagflow.core.keys import Key
from dagflow.core.reuse import ResumePlan
from dagflow.core.walk import transform
from dagflow.engine.chunks import FromSource, pick, pick_stage
from dagflow.engine.layers import CallLayer, StageSpec
from dagflow.engine.layers import Column as SpecColumn
from dagflow.engine.logs import DEFAULT_LOG_LIMITS, LogLimits
from dagflow.engine.results import ResultStorage
from dagflow.engine.shipping import Shipping
from dagflow.engine.wrapper import TaskCall
from dagflow.errors import DefinitionError

_SPEC_CONTAINERS: dict[type, Any] = {list: List, tuple: Tuple, set: Set, frozenset: Set}


Ref = Callable[[Key], Any]  # a task key -> the spec node that reads its value


def _spec_container(kind: type, items: list[Any]) -> Any:
    if kind is dict:
        return Dict(dict(items))
    return _SPEC_CONTAINERS[kind](*items)


def to_spec(value: Any, ref: Ref = TaskRef) -> Any:
    """`value` with every future replaced by a reference to its value (`ref(key)`, a `TaskRef`
    unless it lives in a chunk) and containers made Dask-visible."""

    def leaf(value: Any) -> Any:
        kind = type(value)
        if kind is TaskFuture:
            return ref(value.key)
        if kind is allow_failure:
            return to_spec(value.future, ref)
        if kind is unmapped:
            return to_spec(value.value, ref)
        return value

    return transform(value, leaf, _spec_container)


@dataclass(slots=True)
class Placement:
    """Where the chunked items of one task key name live: chunk n holds starts[n] .. stops[n]-1,
    under Dask key keys[n], in the values of stage stages[n] of a fused chunk (None: unfused)."""

    starts: list[int] = field(default_factory=list)
    stops: list[int] = field(default_factory=list)
    keys: list[tuple[str, int, int]] = field(default_factory=list)
    stages: list[int | None] = field(default_factory=list)

    def add(self, start: int, stop: int, key: tuple[str, int, int], stage: int | None) -> None:
        self.starts.append(start)
        self.stops.append(stop)
        self.keys.append(key)
        self.stages.append(stage)

    def find(self, index: int) -> int | None:
        n = bisect.bisect_right(self.starts, index) - 1
        if n >= 0 and index < self.stops[n]:
            return n
        return None


@dataclass(slots=True)
class Wave:
    """One submission: the graph, the keys it defines, and the calls it came from."""

    graph: HighLevelGraph
    keys: list[Any]  # a task key per unbatched item, a chunk key `(name, a, b)` per chunk
    calls: list[Call]
    chunks: dict[int, list[tuple[int, int]]]  # id(call) -> its chunks, for chunked calls
    fused: dict[int, list[tuple[Call, int]]]  # id(head) -> the maps fused into its chunks


class Compiler:
    """Compiles the waves of one flow run; caches one `TaskCall` per task."""

    def __init__(
        self,
        run_id: str,
        topic: str,
        *,
        results_url: str,
        log_limits: LogLimits = DEFAULT_LOG_LIMITS,
        persist_all: bool = False,
        resume: ResumePlan | None = None,
        shipping: Shipping | None = None,
        config: RunConfig = EMPTY,
    ) -> None:
        self.run_id = run_id
        self.config = config
        self.shipping = shipping
        self.topic = topic
        self.results_url = results_url
        self.log_limits = log_limits
        self.persist_all = persist_all
        self.storage: ResultStorage | None = None
        self.resume = resume
        self._storage_checked = False
        self._calls: dict[tuple[int, str], TaskCall] = {}
        self._placed: dict[str, Placement] = {}  # key name -> where its chunked items are

    def ref(self, key: Key) -> Any:
        """The spec node that reads task `key`'s value: its `TaskRef`, or its pick out of the
        chunk that runs it."""
        placement = self._placed.get(key[0])
        if placement is not None:
            n = placement.find(key[1])
            if n is not None:
                chunk, stage = TaskRef(placement.keys[n]), placement.stages[n]
                offset = key[1] - placement.starts[n]
                if stage is None:
                    return SpecTask(None, pick, chunk, offset)
                return SpecTask(None, pick_stage, chunk, stage, offset)
        return TaskRef(key)

    def _storage_for(self, task: Task, persist: bool) -> ResultStorage | None:
        options = task.options
        if not (persist or options.cache_key_fn is not None or self.resume is not None):
            return None
        if self.storage is None:
            self.storage = ResultStorage(self.results_url)
        if not self._storage_checked:
            self.storage.check_writable()
            self._storage_checked = True
        return self.storage

    def task_call(self, task: Task, name: str) -> TaskCall:
        cache_key = (id(task), name)
        call = self._calls.get(cache_key)
        if call is None:
            persist = (
                task.options.persist_result
                if task.options.persist_result is not None
                else self.persist_all
            )
            resume = self.resume
            call = TaskCall(
                task,
                self.run_id,
                self.topic,
                name,
                persist=persist,
                storage=self._storage_for(task, persist),
                earlier=resume.for_task(task.slug) if resume is not None else None,
                force=resume.force if resume is not None else False,
                spent_retries=resume.spent_retries if resume is not None else False,
                log_limits=self.log_limits,
                config=self.config,
            )
            try:
                if self.shipping is not None:
                    call.by_reference = self.shipping.by_reference(task.fn)
                payload = call.payload()
                pickle.loads(payload)
            except Exception as exc:
                raise DefinitionError(
                    f"task {task.name!r} cannot be sent to the cluster: its function "
                    f"{getattr(task.fn, '__qualname__', task.fn)!r} is not picklable "
                    f"({type(exc).__name__}: {exc})"
                ) from None
            self._calls[cache_key] = call
        return call

    def compile(
        self,
        calls: list[Call],
        chunks: dict[int, list[tuple[int, int]]] | None = None,
        fused: dict[int, list[tuple[Call, int]]] | None = None,
    ) -> Wave:
        """One wave of `calls`; `chunks[id(call)]` cuts a mapped call into chunks (absolute
        `[a, b)` item ranges covering all its items), the others run one task per item;
        `fused[id(head)]` lists the maps (in `calls`, after it) that run in its chunks."""
        chunks = chunks or {}
        fused = fused or {}
        heads = {id(c): c for c in calls if id(c) in fused}
        follows = {k: (heads[head_id], n) for k, (head_id, n) in stages_of(fused).items()}
        layers: dict[str, CallLayer] = {}
        keys: list[Any] = []
        for call in calls:
            if id(call) in follows:
                head, stage = follows[id(call)]
                placement = self._placed.setdefault(call.name, Placement())
                shift = call.start - head.start
                for a, b in chunks[id(head)]:
                    placement.add(a + shift, b + shift, (head.name, a, b), stage)
                continue
            cut = chunks.get(id(call))
            followers = fused.get(id(call))
            layers[f"{call.name}-{call.start}"] = self._layer(call, cut, followers)
            if cut is None:
                keys.extend(call.iter_keys())
            else:
                keys.extend((call.name, a, b) for a, b in cut)
                placement = self._placed.setdefault(call.name, Placement())
                for a, b in cut:
                    placement.add(a, b, (call.name, a, b), 0 if followers else None)
        graph = HighLevelGraph(layers, {name: set() for name in layers})
        return Wave(graph, keys, calls, chunks, fused)

    def _layer(
        self,
        call: Call,
        chunks: list[tuple[int, int]] | None = None,
        followers: list[tuple[Call, int]] | None = None,
    ) -> CallLayer:
        func = self.task_call(call.task, call.name)
        ref = self.ref if self._placed else TaskRef
        refs = call.refs
        hard = [ref(k) for k in refs.hard]
        soft = [ref(k) for k in refs.soft]
        item_hard: list[list[Any]] | None = None
        item_soft: list[list[Any]] | None = None
        has_futures = check_no_cycle(call)  # containers may have changed since the call
        if call.mapped:
            args = tuple(_column_spec(a, has_futures, ref) for a in call.args)
            kwargs = {k: _column_spec(v, has_futures, ref) for k, v in call.kwargs.items()}
            item_hard, item_soft = _item_refs(call, ref)
        else:
            if has_futures and not refs:  # futures put in after the call: they are upstreams
                collect_refs((call.args, call.kwargs), call.futures[0].run_id, refs)
                hard, soft = [ref(k) for k in refs.hard], [ref(k) for k in refs.soft]
            deep = bool(refs) or has_futures
            args = tuple(to_spec(a, ref) if deep else a for a in call.args)
            kwargs = {k: to_spec(v, ref) if deep else v for k, v in call.kwargs.items()}
        options = call.task.options
        annotations: dict[str, Any] = {"dagflow_run": self.run_id}
        if options.priority:
            annotations["priority"] = options.priority
        if options.resources:
            annotations["resources"] = dict(options.resources)
        return CallLayer(
            call.name,
            call.start,
            call.count,
            func,
            args,
            kwargs,
            hard,
            soft,
            item_hard,
            item_soft,
            annotations,
            chunks,
            [self._stage(f, source) for f, source in followers] if followers else None,
        )

    def _stage(self, call: Call, source: int) -> StageSpec:
        """A map fused into another's chunks: its mapped argument that holds futures becomes
        `FromSource` (each item gets its source item's value), the others stay as they are."""

        def spec(value: Any) -> Any:
            if type(value) is not Column:
                return value
            return FromSource if value.refs is not None else SpecColumn(value.values, refs=False)

        args = tuple(spec(a) for a in call.args)
        kwargs = {k: spec(v) for k, v in call.kwargs.items()}
        return (self.task_call(call.task, call.name), call.start, source, args, kwargs)

    def find_unpicklable(self, calls: Iterable[Call]) -> str | None:
        """After a failed submission: name the first task whose arguments cannot be pickled."""
        for call in calls:
            for where, value in _arguments(call):
                try:
                    cloudpickle.dumps(value)
                except Exception as exc:
                    return (
                        f"task {call.task.name!r}: {where} of type {type(value).__name__} "
                        f"cannot be sent to the cluster ({type(exc).__name__}: {exc})"
                    )
        return None


def _arguments(call: Call) -> Iterable[tuple[str, Any]]:
    for i, a in enumerate(call.args):
        if isinstance(a, Column):
            for j, v in enumerate(a.values):
                yield f"argument {i} (item {j})", v
        else:
            yield f"argument {i}", a
    for k, v in call.kwargs.items():
        if isinstance(v, Column):
            for j, item in enumerate(v.values):
                yield f"argument {k!r} (item {j})", item
        else:
            yield f"argument {k!r}", v


def _column_spec(value: Any, deep: bool, ref: Ref) -> Any:
    if type(value) is Column:
        if deep:
            return SpecColumn([to_spec(v, ref) for v in value.values])
        if value.refs is None:
            return SpecColumn(value.values, refs=False)
        refs = value.refs
        return SpecColumn([to_spec(v, ref) if refs[i] else v for i, v in enumerate(value.values)])
    return to_spec(value, ref)


def _item_refs(call: Call, ref: Ref) -> tuple[list[list[Any]] | None, list[list[Any]] | None]:
    columns = [
        c for c in (*call.args, *call.kwargs.values()) if type(c) is Column and c.refs is not None
    ]
    if not columns:
        return None, None
    item_hard: list[list[Any]] = []
    item_soft: list[list[Any]] = []
    for i in range(call.count):
        merged = Refs()
        for col in columns:
            assert col.refs is not None
            merged.merge(col.refs[i])
        item_hard.append([ref(k) for k in merged.hard])
        item_soft.append([ref(k) for k in merged.soft])
    return item_hard, item_soft
