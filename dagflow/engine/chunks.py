"""Chunks of `.map` items: one Dask task runs a slice of items, each item a task run of its own.

Worker side, `run_chunk` calls the task wrapper (`TaskCall.execute`) once per item, in order, so
every item keeps its own upstream checks, cache lookup, attempts, retries with their delays,
timeout, logs (attributed to `task[i]`) and result; an item that fails returns its `Failure` in
its place and its neighbours run on. The chunk returns one value per item (a list). Its reports
are buffered in a `ChunkBox` and handed to the worker's outbox as one batch, at the end of the
chunk or when the oldest has waited `FLUSH_SECONDS` (a long item's RUNNING still reaches the
driver while it runs, so a lost worker's running item gets its CRASHED attempt).

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
GUARD_ANNOTATION = "dagflow_guard"  # a careful chunk's: {"poison": [[item, deaths, worker]]}
GUARD_MARK = "dagflow_chunk_at"  # the scheduler handler a careful chunk calls before an item


def chunk_key(name: str, start: int, stop: int) -> ChunkKey:
    """The Dask key of the chunk running items `start .. stop - 1` of task key name `name`."""
    return (name, start, stop)


def is_chunk_key(key: Any) -> bool:
    return type(key) is tuple and len(key) == 3 and type(key[1]) is int and type(key[2]) is int


def pick(values: Sequence[Any], offset: int) -> Any:
    """Item `offset` of a chunk's values: what a downstream task receives for that item."""
    return values[offset]


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
    from distributed import get_worker

    worker = get_worker()
    box = ChunkBox(outbox_for(worker), call.topic)
    where = worker.address
    execute = call.execute
    plain_args = not any(columns)
    out: list[Any] = []
    key = chunk_key(call.name, start, stop)
    task_state = worker.state.tasks.get(key)
    poison = _careful(task_state.annotations if task_state is not None else None)
    try:
        for j in range(stop - start):
            if poison is not None:  # a worker died running this chunk (`chunk_guard.py`)
                if start + j in poison:
                    out.append(call.killed(box, where, start + j, *poison[start + j]))
                    continue
                box.flush()
                _mark(worker, key, start + j)
            deps = hard
            if item_hard is not None and item_hard[j]:
                deps = [*hard, *item_hard[j]]
            item_is_soft = bool(soft) or (item_soft is not None and bool(item_soft[j]))
            item_args = args
            if not plain_args:
                item_args = tuple(a[j] if c else a for a, c in zip(args, columns, strict=True))
            item_kwargs = (
                {k: v[j] if k in kw_columns else v for k, v in kwargs.items()}
                if kw_columns
                else kwargs
            )
            out.append(execute(box, where, start + j, deps, item_is_soft, item_args, item_kwargs))
    finally:
        box.close()
    return out


def _careful(annotations: dict[str, Any] | None) -> dict[int, tuple[int, str]] | None:
    """None for a chunk running plainly; for a careful one (a worker died running it), its
    poison items: item -> (deaths, last worker)."""
    guard = (annotations or {}).get(GUARD_ANNOTATION)
    if guard is None:
        return None
    return {int(i): (int(n), str(w)) for i, n, w in guard.get("poison", ())}


def _mark(worker: Any, key: ChunkKey, item: int) -> None:
    """Tell the scheduler's guard which item this careful chunk runs next (one round trip)."""
    from distributed.utils import sync

    try:
        sync(worker.loop, getattr(worker.scheduler, GUARD_MARK), key=key, item=item,
             worker=worker.address)  # fmt: skip
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
    """Item `offset` of a chunk, standing in for the Dask future an unbatched item has."""

    __slots__ = ("chunk", "offset")

    def __init__(self, chunk: Chunk, offset: int) -> None:
        self.chunk = chunk
        self.offset = offset

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
