"""The benchmark's task functions and flows, in an importable module so workers can load them.

Raw Dask and dagflow run the very same functions: `noop`, `ident`, `inc` and `sum_all` are plain
functions for `client.map`/`client.submit`, and the `*_task` objects are `Task`s wrapping them.
Each flow returns nothing, so a run ends when every task has a final state and no result is
gathered to the driver (raw Dask only waits for its futures, too).
"""

from __future__ import annotations

import random
import time
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


def nap(seconds: float) -> None:
    """W7 / W8: an item that takes `seconds` (sleeping, as I/O-bound work does)."""
    time.sleep(seconds)


def naps(kind: str, n: int) -> list[float]:
    """The durations of a sleeping workload's items: W7 all 100 ms, W8 1-50 ms drawn from a
    fixed seed (raw Dask and dagflow sleep the very same durations)."""
    if kind == "sleep100":
        return [0.1] * n
    draw = random.Random(15)
    return [draw.uniform(0.001, 0.05) for _ in range(n)]


noop_task = task(name="noop")(noop)
noop_unbatched = task(name="noop", batch_size=1)(noop)
ident_unbatched = task(name="ident", batch_size=1)(ident)
nap_task = task(name="nap")(nap)
ident_task = task(name="ident")(ident)
inc_task = task(name="inc")(inc)
inc_unbatched = task(name="inc", batch_size=1)(inc)
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


@flow(name="bench_independent_unbatched")
def independent_unbatched(n: int) -> None:
    """W1 / W5 with `batch_size=1`: one Dask task per item, the unbatched path."""
    noop_unbatched.map(range(n))


@flow(name="bench_reduce_unbatched")
def reduce_unbatched(n: int) -> None:
    """W3 with `batch_size=1`."""
    parts: Any = ident_unbatched.map(range(n))
    sum_task(parts)


@flow(name="bench_sleep100")
def sleep100(n: int) -> None:
    """W7: `n` items of 100 ms each (batching must never hurt long items)."""
    nap_task.map(naps("sleep100", n))


@flow(name="bench_sleep_random")
def sleep_random(n: int) -> None:
    """W8: `n` items of 1-50 ms each."""
    nap_task.map(naps("sleep_random", n))


@flow(name="bench_map_chain")
def map_chain(n: int) -> None:
    """W9: a map over `n` items and a map over its items, item by item (fused)."""
    inc_task.map(ident_task.map(range(n)))


@flow(name="bench_map_chain_unbatched")
def map_chain_unbatched(n: int) -> None:
    """W9 with `batch_size=1` on both maps."""
    inc_unbatched.map(ident_unbatched.map(range(n)))
