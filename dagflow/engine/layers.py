"""`CallLayer`: one task call or one `.map` as a compact Dask graph layer.

A `.map` over N items travels to the scheduler as the wrapper's bytes, the mapped columns and the
shared arguments, like `client.map` does, not as N task objects built and pickled on the driver.
The scheduler expands the layer into `Task(key, call, index, deps, soft, *args, **kwargs)` specs
when it materializes the graph. Everything a layer holds is already in Dask's task-spec form
(`TaskRef`, `List`, `Dict` or plain values), so expanding it needs nothing but `dask`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Set
from typing import Any

from dask.highlevelgraph import Layer
from dask.task_spec import List, Task, TaskRef

Key = tuple[str, int]


class Column:
    """A mapped argument in spec form: item i of the call gets `values[i]`."""

    __slots__ = ("values",)

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def __reduce__(self) -> tuple[Any, ...]:
        return (Column, (self.values,))


class CallLayer(Layer):
    """Keys `(name, start) .. (name, start + count - 1)`, each a call of `func`."""

    def __init__(
        self,
        name: str,
        start: int,
        count: int,
        func: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        hard: list[Key],
        soft: list[Key],
        item_hard: list[list[Key]] | None = None,
        item_soft: list[list[Key]] | None = None,
        annotations: Mapping[str, Any] | None = None,
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
        self._cache: dict[Key, Task] | None = None

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
            List(*[TaskRef(k) for k in hard]) if hard else [],
            List(*[TaskRef(k) for k in soft]) if soft else False,
            *args,
            **kwargs,
        )

    def _materialize(self) -> dict[Key, Task]:
        if self._cache is None:
            self._cache = {(self.name, self.start + i): self._task(i) for i in range(self.count)}
        return self._cache

    def __getitem__(self, key: Any) -> Task:
        return self._materialize()[key]

    def __iter__(self) -> Iterator[Key]:
        name = self.name
        return ((name, i) for i in range(self.start, self.start + self.count))

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: object) -> bool:
        return (
            type(key) is tuple
            and len(key) == 2
            and key[0] == self.name
            and self.start <= key[1] < self.start + self.count
        )

    def is_materialized(self) -> bool:
        return self._cache is not None

    def get_output_keys(self) -> Set[Key]:
        return set(self.__iter__())
