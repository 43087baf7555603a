"""What configuration costs a run's tasks: a tag without a limit, a limit never reached, a secret.

One `LocalCluster` (2 worker processes x 1 thread); the same flow of N no-op tasks, run:

- `plain`: untagged tasks, no configuration (the baseline);
- `unlimited tag`: every task tagged `bulk`, which has no concurrency limit (the issue's claim:
  this costs nothing: the task call carries no limit and the wrapper checks an empty tuple);
- `limit not reached`: tagged `wide`, limited to 1,000,000 at once (every task takes and gives
  back a slot of a `distributed.Semaphore`: two scheduler round trips per task);
- `secret set`: untagged, with one secret stored (the run decrypts it; every report and log
  record of every task goes through the masker).

Each repetition runs the variants in turn; the table shows medians, bests (the least disturbed
run, on a loaded machine) and their ratios to `plain`, all from one run of this script. Runs
record into SQLite in a fresh DAGFLOW_HOME.

    python -m benchmarks.concurrency [--tasks 1000] [--repeat 3]
    python -m benchmarks.concurrency --micro     # the task wrapper alone, in-process
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from dagflow import flow, task
from dagflow.runtime import close_stores, default_store, run_flow


def noop(i: int) -> None:
    """Nothing: what is measured is what runs around it."""


plain_task = task(name="plain")(noop)
bulk_task = task(name="bulk", tags=["bulk"])(noop)
wide_task = task(name="wide", tags=["wide"])(noop)


@flow(name="bench_plain")
def plain(n: int) -> None:
    plain_task.map(range(n))


@flow(name="bench_bulk")
def bulk(n: int) -> None:
    bulk_task.map(range(n))


@flow(name="bench_wide")
def wide(n: int) -> None:
    wide_task.map(range(n))


def timed(flow_: Any, n: int, address: str) -> float:
    start = time.perf_counter()
    run = run_flow(flow_, {"n": n}, cluster=address)
    elapsed = time.perf_counter() - start
    if run.state.value != "COMPLETED" or len(run.task_runs) != n:
        raise RuntimeError(f"{flow_.name}: {run.state} with {len(run.task_runs)} tasks")
    return elapsed


class _Box:
    """Stands in for a worker's outbox: keeps nothing (the wrapper's own cost is measured)."""

    def put(self, topic: str, record: Any) -> None:
        pass


def wrapper_cost(calls: int, repeat: int) -> dict[str, float]:
    """Microseconds per `TaskCall.execute` of a no-op task, in this process, best of `repeat`:
    untagged, tagged without a limit, and a secret's masker on every report."""
    from dagflow.core.config import RunConfig, masker_for
    from dagflow.engine.wrapper import TaskCall

    limits = RunConfig(limits={"other": 3})
    secret = RunConfig(secrets={"pw": "a-password-1"}, masker=masker_for(["a-password-1"]))
    variants = {
        "plain": TaskCall(plain_task, "run", "topic", "plain-x"),
        "unlimited tag": TaskCall(bulk_task, "run", "topic", "bulk-x", config=limits),
        "secret set": TaskCall(plain_task, "run", "topic", "plain-y", config=secret),
    }
    assert not variants["unlimited tag"].limits
    box = _Box()
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeat):
        for name, call in variants.items():
            start = time.perf_counter()
            for i in range(calls):
                call.execute(box, "w", i, [], False, (i,), {})
            best[name] = min(best[name], (time.perf_counter() - start) / calls * 1e6)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--micro", action="store_true", help="only the wrapper's cost per call, in-process"
    )
    args = parser.parse_args(argv)
    if args.micro:
        costs = wrapper_cost(20_000, 7)
        print(f"load average {os.getloadavg()[0]:.2f}; TaskCall.execute of a no-op, best of 7")
        print("| variant | us per call | ratio to plain |")
        print("|---|---|---|")
        for name, us in costs.items():
            print(f"| {name} | {us:.2f} | {us / costs['plain']:.2f} |")
        return 0
    home = tempfile.mkdtemp(prefix="dagflow-bench-config-")
    os.environ["DAGFLOW_HOME"] = home
    os.environ.pop("DAGFLOW_DATABASE_URL", None)
    from distributed import LocalCluster

    from benchmarks.overhead import settle

    load_before = os.getloadavg()
    store = default_store()
    store.set_concurrency_limit("wide", 1_000_000)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        cluster.get_client() as client,
    ):
        address = cluster.scheduler_address

        def with_secret(n: int) -> float:
            default_store().set_secret("bench_password", "a-password-for-the-benchmark")
            try:
                return timed(plain, n, address)
            finally:
                default_store().remove_secret("bench_password")

        variants: dict[str, Callable[[int], float]] = {
            "plain": lambda n: timed(plain, n, address),
            "unlimited tag": lambda n: timed(bulk, n, address),
            "limit not reached": lambda n: timed(wide, n, address),
            "secret set": with_secret,
        }
        timed(plain, 100, address)  # warm up: imports on the workers, the database
        settle(client)
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeat):
            for name, fn in variants.items():
                times[name].append(fn(args.tasks))
                settle(client)
    close_stores()
    base = statistics.median(times["plain"])
    print(f"date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"command: python -m benchmarks.concurrency {' '.join(sys.argv[1:])}".rstrip())
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"{args.tasks} no-op tasks, {args.repeat} repetitions, LocalCluster 2x1 processes\n")
    best = min(times["plain"])
    print("| variant | median s | ms/task | median/plain | best s | best/plain | every run s |")
    print("|---|---|---|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        every = " ".join(f"{v:.2f}" for v in values)
        print(
            f"| {name} | {median:.3f} | {1000 * median / args.tasks:.2f} | {median / base:.2f} "
            f"| {min(values):.3f} | {min(values) / best:.2f} | {every} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
