"""Chunks of `.map` items: one Dask task runs a slice of items, each item a task run of its own.

Worker side, `run_chunk` calls the task wrapper (`TaskCall.execute`) once per item, in order, so
every item keeps its own upstream checks, cache lookup, attempts, retries with their delays,
timeout, logs (attributed to `task[i]`) and result; an item that fails returns its `Failure` in
its place and its neighbours run on. The chunk returns one value per item (a list). Its reports
are buffered in a `ChunkBox` and handed to the worker's outbox as one batch, at the end of the
chunk or when the oldest has waited `FLUSH_SECONDS` (a long item's RUNNING still reaches the
driver while it runs, so a lost worker's running item gets its CRASHED attempt).

A fused chunk (`run_fused`, see `core/fusion.py`) runs each item through a chain of maps and
returns one list of values per stage; an item of stage s is read as `pick_stage(chunk, s, i)`.

A chunk's Dask key is `(name, start, stop)`: the same name as its items' keys `(name, index)`,
so the dashboard's progress bars and task stream still read per task, and it never collides with
an item key. Downstream tasks read item i through `pick(chunk, offset)`, inlined in their own
Dask task (see the compiler); the driver holds an `ItemFuture` per item, which behaves like the
`distributed.Future` an unbatched item has, for what the engine asks of it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from dagflow.core.keys import key_text, parse_key
from dagflow.engine.outbox import ChunkBox, outbox_for

if TYPE_CHECKING:
    from dagflow.engine.wrapper import TaskCall

ChunkKey = tuple[str, int, int]
# a careful chunk's annotation: {"poison": [[stage, item, deaths, last worker], ...]}
GUARD_ANNOTATION = "dagflow_guard"
GUARD_MARK = "dagflow_chunk_at"  # the scheduler handler a careful chunk calls before an item


def chunk_key(name: str, start: int, stop: int) -> ChunkKey:
    """The Dask key of the chunk running items `start .. stop - 1` of task key name `name`."""
    return (name, start, stop)


def is_chunk_key(key: Any) -> bool:
    return type(key) is tuple and len(key) == 3 and type(key[1]) is int and type(key[2]) is int


def pick(values: Sequence[Any], offset: int) -> Any:
    """Item `offset` of a chunk's values: what a downstream task receives for that item."""
    return values[offset]


def pick_stage(values: Sequence[Sequence[Any]], stage: int, offset: int) -> Any:
    """Item `offset` of stage `stage` of a fused chunk's values (one list per stage)."""
    return values[stage][offset]


class FromSource:
    """Stands, in a fused stage's arguments, for the item's value from the stage it consumes."""


def run_chunk(
    call: TaskCall,
    start: int,
    stop: int,
    hard: list[Any],
    item_hard: list[list[Any]] | None,
    soft: Any,
    item_soft: list[list[Any]] | None,
    columns: tuple[bool, ...],
    kw_columns: tuple[str, ...],
    *args: Any,
    **kwargs: Any,
) -> list[Any]:
    """Items `start .. stop - 1` of `call` (Dask calls this): one value or `Failure` per item.

    `hard`/`soft` are the upstream values every item depends on, `item_hard[j]`/`item_soft[j]`
    those of item `start + j`; `columns` says which positional arguments are per-item lists
    (`kw_columns` which keyword arguments), the others are passed whole to every item.
    """
    return run_fused([], call, start, stop, hard, item_hard, soft, item_soft, columns, kw_columns,
                     *args, **kwargs)[0]  # fmt: skip


Stage = tuple[Any, int, int, tuple[bool, ...], tuple[str, ...], tuple[Any, ...], dict[str, Any]]


def run_fused(
    stages: list[Stage],
    call: TaskCall,
    start: int,
    stop: int,
    hard: list[Any],
    item_hard: list[list[Any]] | None,
    soft: Any,
    item_soft: list[list[Any]] | None,
    columns: tuple[bool, ...],
    kw_columns: tuple[str, ...],
    *args: Any,
    **kwargs: Any,
) -> list[list[Any]]:
    """A fused chunk (`core/fusion.py`): items `start .. stop - 1` of the head `call`, as
    `run_chunk` runs them, and for each item at once the same item of every following stage.

    A stage is `(call, start, source, columns, kw_columns, args, kwargs)`: its item j takes the
    value of item j of stage `source` (0: the head) where its arguments hold `FromSource`; that
    value is also its only upstream, so a failed source item makes it UPSTREAM_FAILED. Returns
    one list of values per stage, the head's first.
    """
    from distributed import get_worker

    worker = get_worker()
    box = ChunkBox(outbox_for(worker), call.topic)
    where = worker.address
    outs: list[list[Any]] = [[] for _ in range(len(stages) + 1)]
    key = chunk_key(call.name, start, stop)
    task_state = worker.state.tasks.get(key)
    poison = _careful(task_state.annotations if task_state is not None else None)
    head_columns = any(columns)
    try:
        for j in range(stop - start):
            index = start + j
            killed = None if poison is None else _step(poison, box, worker, key, 0, index, call)
            if killed is not None:
                outs[0].append(killed)
            else:
                deps = hard
                if item_hard is not None and item_hard[j]:
                    deps = [*hard, *item_hard[j]]
                item_is_soft = bool(soft) or (item_soft is not None and bool(item_soft[j]))
                item_args = args
                if head_columns:
                    item_args = tuple(a[j] if c else a for a, c in zip(args, columns, strict=True))
                item_kwargs = (
                    {k: v[j] if k in kw_columns else v for k, v in kwargs.items()}
                    if kw_columns
                    else kwargs
                )
                outs[0].append(
                    call.execute(box, where, index, deps, item_is_soft, item_args, item_kwargs)
                )
            for n, (stage_call, stage_start, source, s_cols, s_kw, s_args, s_kwargs) in enumerate(
                stages, 1
            ):
                index = stage_start + j
                if poison is not None:
                    killed = _step(poison, box, worker, key, n, index, stage_call)
                    if killed is not None:
                        outs[n].append(killed)
                        continue
                value = outs[source][j]
                a = tuple(
                    value if v is FromSource else (v[j] if c else v)
                    for v, c in zip(s_args, s_cols, strict=True)
                )
                kw = {
                    k: value if v is FromSource else (v[j] if k in s_kw else v)
                    for k, v in s_kwargs.items()
                }
                outs[n].append(stage_call.execute(box, where, index, [value], False, a, kw))
    finally:
        box.close()
    return outs


def _careful(annotations: dict[str, Any] | None) -> dict[tuple[int, int], tuple[int, str]] | None:
    """None for a chunk running plainly; for a careful one (a worker died running it), its
    poison items: (stage, item) -> (deaths, last worker)."""
    guard = (annotations or {}).get(GUARD_ANNOTATION)
    if guard is None:
        return None
    return {(int(s), int(i)): (int(n), str(w)) for s, i, n, w in guard.get("poison", ())}


def _step(
    poison: dict[tuple[int, int], tuple[int, str]],
    box: ChunkBox,
    worker: Any,
    key: ChunkKey,
    stage: int,
    index: int,
    call: TaskCall,
) -> Any:
    """A careful chunk's step before item `index` of `stage`: a poison item's `Failure` (it does
    not run), else None once the scheduler knows which item runs next."""
    if (stage, index) in poison:
        return call.killed(box, worker.address, index, *poison[stage, index])
    box.flush()
    _mark(worker, key, index, stage)
    return None


def _mark(worker: Any, key: ChunkKey, item: int, stage: int = 0) -> None:
    """Tell the scheduler's guard which item this careful chunk runs next (one round trip)."""
    from distributed.utils import sync

    try:
        sync(worker.loop, getattr(worker.scheduler, GUARD_MARK), key=key, item=item,
             worker=worker.address, stage=stage)  # fmt: skip
    except Exception:  # no guard on this scheduler: the chunk runs as it would without
        pass


class Chunk:
    """The driver's handle of one chunk's Dask future; its values once fetched (the body asked
    for one of its items, and usually asks for its neighbours next)."""

    __slots__ = ("future", "values")

    def __init__(self, future: Any) -> None:
        self.future = future
        self.values: list[Any] | None = None


class ItemFuture:
    """Item `offset` of a chunk, standing in for the Dask future an unbatched item has; of
    stage `stage` of a fused chunk, whose values are one list per stage."""

    __slots__ = ("chunk", "offset", "stage")

    def __init__(self, chunk: Chunk, offset: int, stage: int | None = None) -> None:
        self.chunk = chunk
        self.offset = offset
        self.stage = stage

    @property
    def status(self) -> str:
        return str(self.chunk.future.status)

    @property
    def key(self) -> Any:
        return self.chunk.future.key

    def done(self) -> bool:
        return bool(self.chunk.future.done())

    def exception(self, timeout: float | None = None) -> BaseException | None:
        return self.chunk.future.exception(timeout=timeout)  # type: ignore[no-any-return,unused-ignore]

    def result(self, timeout: float | None = None) -> Any:
        chunk = self.chunk
        if chunk.values is None:
            chunk.values = chunk.future.result(timeout=timeout)
        if self.stage is not None:
            return chunk.values[self.stage][self.offset]
        return chunk.values[self.offset]


def dask_futures(futures: Iterable[Any]) -> list[Any]:
    """The Dask futures behind `futures` (an item's chunk future once, however many items)."""
    out: dict[int, Any] = {}
    for fut in futures:
        real = fut.chunk.future if type(fut) is ItemFuture else fut
        out.setdefault(id(real), real)
    return list(out.values())


def values_of(futures: Sequence[Any], gathered: Sequence[Any]) -> list[Any]:
    """The value of each of `futures` from `gathered`, the values of `dask_futures(futures)`
    in that order (a chunk's value is its list; an item picks its own)."""
    by_id = {id(real): value for real, value in zip(dask_futures(futures), gathered, strict=False)}
    out = []
    for fut in futures:
        if type(fut) is ItemFuture:
            values = by_id.get(id(fut.chunk.future))
            if isinstance(values, list) and fut.stage is not None:
                values = values[fut.stage]
            out.append(values[fut.offset] if isinstance(values, list) else values)
        else:
            out.append(by_id.get(id(fut)))
    return out


def blamed_key(key: str, blamed: Any) -> str | None:
    """The task key text an erred Dask future of task `key` blames: a task's key, or for a
    chunk `(name, a, b)` none when `key` is in it (it failed itself), else its first item."""
    if not isinstance(blamed, tuple):
        return None
    if len(blamed) == 2:
        return key_text(blamed)
    if len(blamed) == 3:
        name, index = parse_key(key)
        if name == blamed[0] and blamed[1] <= index < blamed[2]:
            return None
        return key_text((blamed[0], blamed[1]))
    return None
