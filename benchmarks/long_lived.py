"""Does a long-lived process stay flat? Many runs in one process, on one cluster.

Run from the repository root:

    python -m benchmarks.long_lived [--runs 1000] [--every 100] [--cluster local] [--json]

One driver process runs a small flow (`--tasks` mapped no-op tasks and a reduce, recorded in a
fresh SQLite run history) `--runs` times on one cluster, as `dagflow serve` or a notebook would.
Every `--every` runs it samples:

- the driver's resident memory (RSS, after a `gc.collect()`);
- on the Dask scheduler: its event topics and the messages they hold, its spans, task groups and
  task prefixes, and the tasks it still knows (what a scheduler serving for weeks would keep).

The first sample is taken after a warm-up of `--every` runs (imports, caches, the cluster's own
first allocations), and the growth per run is measured from it to the last one. Nothing here
asserts anything; the figures go to `benchmarks/RESULTS.md`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SAMPLE_ONLY = ("runs", "rss_mb", "seconds")


def rss_mb() -> float:
    """This process's resident memory now (Linux: /proc), in MB."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def scheduler_state(dask_scheduler: Any = None) -> dict[str, int]:
    """On the scheduler: how much it keeps."""
    spans = dask_scheduler.extensions.get("spans")
    events = dask_scheduler.get_events()  # every topic and the messages it keeps
    return {
        "topics": len(events),
        "event_messages": sum(len(v) for v in events.values()),
        "spans": len(spans.spans) if spans is not None else 0,
        "task_groups": len(dask_scheduler.task_groups),
        "task_prefixes": len(dask_scheduler.task_prefixes),
        "tasks": len(dask_scheduler.tasks),
        # the scheduler's own process (the driver's, on a LocalCluster)
        "scheduler_rss_mb": round(rss_mb(), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--cluster", default="local", help="local or local-threads")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="dagflow-long-lived-"))
    os.environ["DAGFLOW_HOME"] = str(home)
    os.environ["DAGFLOW_CLUSTER"] = args.cluster

    from dagflow import flow, task
    from dagflow.clusters import get_cluster

    @task
    def noop(i: int) -> int:
        return i

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    @flow
    def small(n: int) -> int:
        return total(noop.map(range(n))).result()

    samples: list[dict[str, Any]] = []
    start = time.monotonic()
    for i in range(1, args.runs + 1):
        run = small.run(args.tasks)
        if run.state.value != "COMPLETED":
            sys.exit(f"run {i} ended {run.state}: {run.error}")
        del run
        if i % args.every == 0:
            gc.collect()
            client = get_cluster(args.cluster).client
            sample = {"runs": i, "rss_mb": round(rss_mb(), 1)}
            sample.update(client.run_on_scheduler(scheduler_state))
            sample["seconds"] = round(time.monotonic() - start, 1)
            samples.append(sample)
            if not args.json:
                print(json.dumps(sample), flush=True)
    first, last = samples[0], samples[-1]
    runs = last["runs"] - first["runs"]
    summary = {
        "runs": args.runs,
        "tasks_per_run": args.tasks + 1,
        "cluster": args.cluster,
        "rss_first_mb": first["rss_mb"],
        "rss_last_mb": last["rss_mb"],
        "rss_growth_kb_per_run": round((last["rss_mb"] - first["rss_mb"]) * 1000 / runs, 2)
        if runs
        else None,
        "scheduler_first": {k: v for k, v in first.items() if k not in SAMPLE_ONLY},
        "scheduler_last": {k: v for k, v in last.items() if k not in SAMPLE_ONLY},
        "samples": samples,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=2))


if __name__ == "__main__":
    main()
