"""Where dagflow's driver time goes: profiles of building, submitting and running a big map.

    python -m benchmarks.profile_overhead [--tasks 10000] [--top 25]

Runs on its own `LocalCluster` (2 worker processes x 1 thread):
1. the submit probe under cProfile, in the flow body's thread: `.map` over `--tasks` items
   (graph building) and `submit_pending` (compile to one graph + `client.get`);
2. the same flow end to end, timed, next to raw `client.map` for scale.

For the other threads (the event pump, the client's event loop) and the workers, run the whole
script under a sampling profiler: `py-spy record --subprocesses -f raw -o stacks.txt -- python -m
benchmarks.profile_overhead`.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

from distributed import Client, LocalCluster, wait

from benchmarks import workloads
from benchmarks.overhead import WORKLOADS, Workload, run_dagflow, settle
from dagflow import flow
from dagflow.clusters import close_all
from dagflow.core.context import current_flow_run
from dagflow.runtime import run_flow

_stats: dict[str, str] = {}


@flow(name="bench_profile_submit")
def profiled_submit(n: int, top: int) -> None:
    """Build and submit an `n`-task map under cProfile (this thread only)."""
    profile = cProfile.Profile()
    profile.enable()
    workloads.noop_task.map(range(n))
    ctx = current_flow_run.get()
    assert ctx is not None
    ctx.graph.resolver.submit_pending()
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    _stats["submit"] = out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=10_000)
    p.add_argument("--top", type=int, default=25)
    args = p.parse_args(argv)
    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
        ) as cluster,
        Client(cluster) as client,
    ):
        address = cluster.scheduler_address
        run_dagflow(address, Workload("warm-up", "reduce", 20, ""))
        settle(client)
        run = run_flow(profiled_submit, {"n": args.tasks, "top": args.top}, cluster=address)
        print(f"submit probe: {run.state}")
        print(_stats.get("submit", "(no profile)"))
        settle(client)
        wl = Workload("W5", "independent", args.tasks, WORKLOADS["W5"].text)
        elapsed = run_dagflow(address, wl)
        print(f"dagflow {args.tasks:,} tasks end to end: {elapsed:.2f}s")
        settle(client)
        start = time.perf_counter()
        wait(client.map(workloads.noop, range(args.tasks), pure=False))
        print(f"raw client.map {args.tasks:,} tasks: {time.perf_counter() - start:.2f}s")
        settle(client)
        close_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
