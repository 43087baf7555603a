"""The benchmark's task functions and flows, in an importable module so workers can load them.

Raw Dask and dagflow run the very same functions: `noop`, `ident`, `inc` and `sum_all` are plain
functions for `client.map`/`client.submit`, and the `*_task` objects are `Task`s wrapping them.
Each flow returns nothing, so a run ends when every task has a final state and no result is
gathered to the driver (raw Dask only waits for its futures, too).
"""

from __future__ import annotations

from typing import Any

from dagflow import flow, task


def noop(i: int) -> None:
    """The cheapest possible task: the benchmark measures what runs around it."""


def ident(i: int) -> int:
    return i


def inc(x: int) -> int:
    return x + 1


def sum_all(values: list[int]) -> int:
    return sum(values)


noop_task = task(name="noop")(noop)
ident_task = task(name="ident")(ident)
inc_task = task(name="inc")(inc)
sum_task = task(name="sum_all")(sum_all)


@flow(name="bench_independent")
def independent(n: int) -> None:
    """W1 / W5 / W6: `n` independent no-op tasks."""
    noop_task.map(range(n))


@flow(name="bench_chain")
def chain(n: int) -> None:
    """W2: a chain of `n` tasks, each adding one to the previous one's value."""
    value: Any = inc_task(0)
    for _ in range(n - 1):
        value = inc_task(value)


@flow(name="bench_reduce")
def reduce(n: int) -> None:
    """W3: `n` tasks and one task summing their values."""
    parts: Any = ident_task.map(range(n))  # futures stand in for the values they will have
    sum_task(parts)
