"""`CallLayer`: one task call or one `.map` as a compact Dask graph layer.

A `.map` over N items travels to the scheduler as the wrapper's bytes, the mapped columns and the
shared arguments, like `client.map` does, not as N task objects built and pickled on the driver.
The scheduler expands the layer into `Task(key, call, index, deps, soft, *args, **kwargs)` specs
when it materializes the graph. Everything a layer holds is already in Dask's task-spec form
(`TaskRef`, `List`, `Dict` or plain values), so expanding it needs nothing but `dask`.

A layer with `chunks` expands into one task per chunk instead (`engine/chunks.py`): key
`(name, a, b)` runs items `a .. b - 1` through `run_chunk`. Upstream references (`hard`, `soft`
and the per-item lists) arrive as spec nodes: a `TaskRef`, or an inlined pick of an item out of
an upstream chunk. A layer with `stages` runs the maps fused into it in the same chunk tasks
(`run_fused`): they add no key of their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from typing import Any

from dask.highlevelgraph import Layer
from dask.task_spec import List, Task

from dagflow.engine.chunks import run_chunk, run_fused

Key = tuple[str, int]
Chunk = tuple[int, int]
# a map fused into a layer's chunks: its wrapper, first item, the stage it consumes, arguments
# (a `Column` per plain mapped argument, `chunks.FromSource` for the consumed one)
StageSpec = tuple[Any, int, int, tuple[Any, ...], dict[str, Any]]


class Column:
    """A mapped argument in spec form: item i of the call gets `values[i]`; `refs` says whether
    any value holds a reference to another task (then a chunk's slice is a Dask `List`)."""

    __slots__ = ("refs", "values")

    def __init__(self, values: list[Any], refs: bool = True) -> None:
        self.values = values
        self.refs = refs

    def __reduce__(self) -> tuple[Any, ...]:
        return (Column, (self.values, self.refs))


class CallLayer(Layer):
    """Keys `(name, start) .. (name, start + count - 1)`, each a call of `func`; or, with
    `chunks` (absolute `[a, b)` item ranges), keys `(name, a, b)`, each running a chunk."""

    def __init__(
        self,
        name: str,
        start: int,
        count: int,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        hard: list[Any],
        soft: list[Any],
        item_hard: list[list[Any]] | None = None,
        item_soft: list[list[Any]] | None = None,
        annotations: Mapping[str, Any] | None = None,
        chunks: list[Chunk] | None = None,
        stages: list[StageSpec] | None = None,
    ) -> None:
        super().__init__(annotations=annotations)
        self.name = name
        self.start = start
        self.count = count
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.hard = hard
        self.soft = soft
        self.item_hard = item_hard
        self.item_soft = item_soft
        self.chunks = chunks
        self.stages = stages  # maps fused into this one's chunks (`core/fusion.py`)
        self._cache: dict[Any, Task] | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            CallLayer,
            (
                self.name,
                self.start,
                self.count,
                self.func,
                self.args,
                self.kwargs,
                self.hard,
                self.soft,
                self.item_hard,
                self.item_soft,
                self.annotations,
                self.chunks,
                self.stages,
            ),
        )

    def _task(self, i: int) -> Task:
        hard = self.hard
        soft = self.soft
        if self.item_hard is not None and self.item_hard[i]:
            hard = hard + self.item_hard[i]
        if self.item_soft is not None and self.item_soft[i]:
            soft = soft + self.item_soft[i]
        args = [a.values[i] if type(a) is Column else a for a in self.args]
        kwargs = {k: v.values[i] if type(v) is Column else v for k, v in self.kwargs.items()}
        key = (self.name, self.start + i)
        return Task(
            key,
            self.func,
            self.start + i,
            List(*hard) if hard else [],
            List(*soft) if soft else False,
            *args,
            **kwargs,
        )

    def _chunk_task(self, a: int, b: int) -> Task:
        i, j = a - self.start, b - self.start
        item_hard = item_soft = None
        if self.item_hard is not None and any(self.item_hard[i:j]):
            item_hard = List(*[List(*refs) for refs in self.item_hard[i:j]])
        if self.item_soft is not None and any(self.item_soft[i:j]):
            item_soft = List(*[List(*refs) for refs in self.item_soft[i:j]])
        columns = tuple(type(arg) is Column for arg in self.args)
        kw_columns = tuple(k for k, v in self.kwargs.items() if type(v) is Column)
        args = [_slice(arg, i, j) if type(arg) is Column else arg for arg in self.args]
        kwargs = {k: _slice(v, i, j) if type(v) is Column else v for k, v in self.kwargs.items()}
        key = (self.name, a, b)
        if self.stages:
            stages = [_stage(stage, i, j) for stage in self.stages]
            return Task(
                key, run_fused, stages, self.func, a, b,
                List(*self.hard) if self.hard else [], item_hard,
                List(*self.soft) if self.soft else False, item_soft,
                columns, kw_columns, *args, **kwargs,
            )  # fmt: skip
        return Task(
            key,
            run_chunk,
            self.func,
            a,
            b,
            List(*self.hard) if self.hard else [],
            item_hard,
            List(*self.soft) if self.soft else False,
            item_soft,
            columns,
            kw_columns,
            *args,
            **kwargs,
        )

    def _materialize(self) -> dict[Any, Task]:
        if self._cache is None:
            if self.chunks is not None:
                self._cache = {(self.name, a, b): self._chunk_task(a, b) for a, b in self.chunks}
            else:
                self._cache = {
                    (self.name, self.start + i): self._task(i) for i in range(self.count)
                }
        return self._cache

    def __getitem__(self, key: Any) -> Task:
        return self._materialize()[key]

    def __iter__(self) -> Iterator[Any]:
        name = self.name
        if self.chunks is not None:
            return ((name, a, b) for a, b in self.chunks)
        return ((name, i) for i in range(self.start, self.start + self.count))

    def __len__(self) -> int:
        return self.count if self.chunks is None else len(self.chunks)

    def __contains__(self, key: object) -> bool:
        if type(key) is not tuple or not key or key[0] != self.name:
            return False
        if self.chunks is not None:
            return len(key) == 3 and (key[1], key[2]) in set(self.chunks)
        return len(key) == 2 and self.start <= key[1] < self.start + self.count

    def is_materialized(self) -> bool:
        return self._cache is not None

    def get_output_keys(self) -> Set[Any]:
        return set(self.__iter__())


def _stage(stage: StageSpec, i: int, j: int) -> tuple[Any, ...]:
    """A fused stage's part for items `i .. j - 1` of its layer (`chunks.run_fused`'s form)."""
    func, start, source, args, kwargs = stage
    columns = tuple(type(a) is Column for a in args)
    kw_columns = tuple(k for k, v in kwargs.items() if type(v) is Column)
    part_args = tuple(a.values[i:j] if type(a) is Column else a for a in args)
    part_kwargs = {k: v.values[i:j] if type(v) is Column else v for k, v in kwargs.items()}
    return (func, start + i, source, columns, kw_columns, part_args, part_kwargs)


def _slice(column: Column, i: int, j: int) -> Any:
    values = column.values[i:j]
    return List(*values) if column.refs else values
