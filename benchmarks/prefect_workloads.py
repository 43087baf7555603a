"""The benchmark's workloads as Prefect 3 flows, run with prefect-dask's `DaskTaskRunner`.

Imported only when the `compare` extra (`prefect`, `prefect-dask`) is installed. The tasks wrap
the same functions as `benchmarks.workloads`; each flow waits for its futures and returns nothing.
Prefect reads its settings when first imported: set `PREFECT_HOME` (and leave `PREFECT_API_URL`
unset, for its ephemeral SQLite server) before importing this module.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect_dask import DaskTaskRunner

from benchmarks.workloads import ident, inc, noop, sum_all

noop_task = task(name="noop", cache_policy=NO_CACHE)(noop)
ident_task = task(name="ident", cache_policy=NO_CACHE)(ident)
inc_task = task(name="inc", cache_policy=NO_CACHE)(inc)
sum_task = task(name="sum_all", cache_policy=NO_CACHE)(sum_all)


@flow(name="bench_independent")
def independent(n: int) -> None:
    noop_task.map(range(n)).wait()


@flow(name="bench_chain")
def chain(n: int) -> None:
    value: Any = inc_task.submit(0)
    for _ in range(n - 1):
        value = inc_task.submit(value)
    value.wait()


@flow(name="bench_reduce")
def reduce(n: int) -> None:
    parts = ident_task.map(range(n))
    sum_task.submit(parts).wait()


FLOWS = {"independent": independent, "chain": chain, "reduce": reduce}


def run(kind: str, n: int, address: str) -> None:
    """Run workload `kind` over `n` tasks on the Dask scheduler at `address`."""
    runner = DaskTaskRunner(address=address)
    FLOWS[kind].with_options(task_runner=runner)(n=n)
