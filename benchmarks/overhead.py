"""dagflow's overhead over raw Dask (and Prefect 3 on Dask, when installed), on one cluster.

Run from the repository root:

    python -m benchmarks.overhead [--workloads W1,W2,W3,W5] [--repeat 3] [--big] [--json]

One cluster (a `LocalCluster` of 2 worker processes x 1 thread, or with `--remote` a
`dask scheduler` and two `dask worker` processes on 127.0.0.1) serves every system; dagflow
connects to it by its scheduler address. For each workload the systems run in turn, `--repeat`
times, so that the noise of a shared machine falls on all of them alike; the table shows medians.
Raw Dask uses the fastest plain way: `client.map` / `client.submit` futures, then waits for them.

Workloads: W1 1,000 independent tasks; W2 a chain of 200; W3 500 tasks and a reduce; W5 10,000
independent tasks; W6 100,000 independent tasks (in `--workloads`, or with `--big` dagflow only,
with the driver's peak memory); W7 1,000 items of 100 ms; W8 2,000 items of 1-50 ms; W9 a map
of 5,000 items and a map over its items (fused into the same chunks). dagflow
maps adaptively in chunks (issue #15); `--unbatched` adds a column with `batch_size=1` (one Dask
task per item) on the workloads that map. Also measured: the driver time to build and submit a
10,000-task map.
Nothing here asserts a timing: the targets are read off the table.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dask
import distributed
from distributed import Client, LocalCluster, wait

import dagflow
from benchmarks import workloads
from dagflow import Flow, flow
from dagflow.clusters import close_all
from dagflow.core.context import current_flow_run
from dagflow.runtime import run_flow

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    kind: str  # independent | chain | reduce | map_chain | sleep100 | sleep_random
    n: int  # tasks (a reduce adds one, a map chain has two per item)
    text: str

    @property
    def tasks(self) -> int:
        if self.kind == "map_chain":
            return 2 * self.n
        return self.n + 1 if self.kind == "reduce" else self.n


WORKLOADS = {
    w.name: w
    for w in (
        Workload("W1", "independent", 1_000, "1,000 independent tasks"),
        Workload("W2", "chain", 200, "a chain of 200 tasks"),
        Workload("W3", "reduce", 500, "500 tasks and a reduce"),
        Workload("W5", "independent", 10_000, "10,000 independent tasks"),
        Workload("W6", "independent", 100_000, "100,000 independent tasks"),
        Workload("W7", "sleep100", 1_000, "1,000 items of 100 ms"),
        Workload("W8", "sleep_random", 2_000, "2,000 items of 1-50 ms"),
        Workload("W9", "map_chain", 5_000, "a map of 5,000 items and a map over them"),
    )
}
DEFAULT_WORKLOADS = ("W1", "W2", "W3", "W5")
FLOWS: dict[str, Flow[..., None]] = {
    "independent": workloads.independent,
    "chain": workloads.chain,
    "reduce": workloads.reduce,
    "sleep100": workloads.sleep100,
    "sleep_random": workloads.sleep_random,
    "map_chain": workloads.map_chain,
}
PREFECT_KINDS = ("independent", "chain", "reduce")  # benchmarks/prefect_workloads.py
UNBATCHED: dict[str, Flow[..., None]] = {
    "independent": workloads.independent_unbatched,
    "reduce": workloads.reduce_unbatched,
    "map_chain": workloads.map_chain_unbatched,
}


@dataclass(slots=True)
class Row:
    """One workload's timings per system, in seconds."""

    workload: str
    text: str
    tasks: int
    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, system: str) -> float | None:
        values = self.times.get(system)
        return statistics.median(values) if values else None


# ----------------------------------------------------------------- the systems


def run_raw(client: Client, wl: Workload) -> float:
    """Plain Dask futures; `pure=False` so no repetition reuses an earlier result."""
    start = time.perf_counter()
    if wl.kind == "independent":
        futures = client.map(workloads.noop, range(wl.n), pure=False)
        wait(futures)
    elif wl.kind == "chain":
        last = client.submit(workloads.inc, 0, pure=False)
        for _ in range(wl.n - 1):
            last = client.submit(workloads.inc, last, pure=False)
        wait(last)
    elif wl.kind == "reduce":
        parts = client.map(workloads.ident, range(wl.n), pure=False)
        total = client.submit(workloads.sum_all, parts, pure=False)
        wait(total)
    elif wl.kind == "map_chain":
        parts = client.map(workloads.ident, range(wl.n), pure=False)
        wait(client.map(workloads.inc, parts, pure=False))
    else:
        futures = client.map(workloads.nap, workloads.naps(wl.kind, wl.n), pure=False)
        wait(futures)
    return time.perf_counter() - start


def run_dagflow(address: str, wl: Workload, unbatched: bool = False) -> float:
    """The workload's flow, run to its final state (every task's state reported)."""
    flow_ = UNBATCHED[wl.kind] if unbatched else FLOWS[wl.kind]
    start = time.perf_counter()
    run = run_flow(flow_, flow_.validate_parameters({"n": wl.n}), cluster=address)
    elapsed = time.perf_counter() - start
    if run.state.value != "COMPLETED" or len(run.task_runs) != wl.tasks:
        raise RuntimeError(f"dagflow {wl.name}: {run.state} with {len(run.task_runs)} tasks")
    return elapsed


def prefect_runner() -> Callable[[str, Workload], float] | None:
    """Prefect's runner if the `compare` extra is installed, else None."""
    try:
        from benchmarks import prefect_workloads
    except ImportError as exc:
        note(f"prefect: not installed ({exc}); skipping its columns")
        return None

    def run_prefect(address: str, wl: Workload) -> float:
        start = time.perf_counter()
        prefect_workloads.run(wl.kind, wl.n, address)
        return time.perf_counter() - start

    return run_prefect


# ----------------------------------------------------------------- separate measurements

_probe: dict[str, float] = {}


@flow(name="bench_submit_probe")
def submit_probe(n: int) -> None:
    """Times the body's `.map` over `n` items (graph building) and the submission of the wave."""
    t0 = time.perf_counter()
    workloads.noop_task.map(range(n))
    t1 = time.perf_counter()
    ctx = current_flow_run.get()
    assert ctx is not None
    ctx.graph.resolver.submit_pending()  # compile + client.get: what .result() does
    t2 = time.perf_counter()
    _probe.update(build=t1 - t0, submit=t2 - t1)


def measure_submit(client: Client, address: str, n: int, repeat: int) -> dict[str, float]:
    """Driver time to build + submit an `n`-task map (median), against raw `client.map`."""
    builds: list[float] = []
    submits: list[float] = []
    raws: list[float] = []
    for _ in range(repeat):
        settle(client)
        t0 = time.perf_counter()
        futures = client.map(workloads.noop, range(n), pure=False)
        raws.append(time.perf_counter() - t0)
        wait(futures)
        del futures
        settle(client)
        run = run_flow(submit_probe, {"n": n}, cluster=address)
        if run.state.value != "COMPLETED":
            raise RuntimeError(f"submit probe ended {run.state}: {run.error}")
        builds.append(_probe["build"])
        submits.append(_probe["submit"])
    build, submit = statistics.median(builds), statistics.median(submits)
    return {
        "tasks": n,
        "dagflow_build_s": build,
        "dagflow_submit_s": submit,
        "dagflow_total_s": build + submit,
        "raw_client_map_s": statistics.median(raws),
    }


def measure_big(client: Client, address: str) -> dict[str, float]:
    """W6 end to end with dagflow, and the driver's peak RSS."""
    wl = WORKLOADS["W6"]
    settle(client)
    gc.collect()
    before = rss_mb()
    peak_before = peak_rss_mb()
    dagflow_s = run_dagflow(address, wl)
    peak_after = peak_rss_mb()
    after = rss_mb()
    return {
        "tasks": wl.n,
        "dagflow_s": dagflow_s,
        "dagflow_us_per_task": dagflow_s / wl.n * 1e6,
        "driver_rss_before_mb": before,
        "driver_rss_after_mb": after,
        "driver_peak_rss_before_mb": peak_before,
        "driver_peak_rss_after_mb": peak_after,
    }


# ----------------------------------------------------------------- helpers


def note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _scheduler_task_count(dask_scheduler: Any) -> int:
    return len(dask_scheduler.tasks)


def settle(client: Client, timeout: float = 60.0) -> None:
    """Wait until the scheduler has forgotten every task, so runs do not overlap.

    dagflow's Dask futures can sit in reference cycles (future -> run -> graph -> future), so
    the cyclic collector runs first: without it, finished results stay on the workers.
    """
    deadline = time.monotonic() + timeout
    while True:
        gc.collect()
        left = client.run_on_scheduler(_scheduler_task_count)
        if not left:
            return
        if time.monotonic() > deadline:
            note(f"warning: {left} tasks still on the scheduler after {timeout:g}s")
            return
        time.sleep(0.1)


def git_rev() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    rev = git("rev-parse", "--short", "HEAD") or "unknown"
    return rev + ("+dirty" if git("status", "--porcelain", "--", "dagflow") else "")


def environment() -> dict[str, Any]:
    versions = {
        "python": platform.python_version(),
        "dask": dask.__version__,
        "distributed": distributed.__version__,
        "dagflow": f"{dagflow.__version__} ({git_rev()})",
    }
    try:
        import prefect
        import prefect_dask

        versions["prefect"] = prefect.__version__
        versions["prefect-dask"] = getattr(prefect_dask, "__version__", "?")
    except ImportError:
        pass
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "versions": versions,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "command": " ".join(["python -m benchmarks.overhead", *sys.argv[1:]]),
    }


def table(rows: list[Row], systems: list[str]) -> str:
    head = ["workload", "tasks"]
    for s in systems:
        head += [f"{s} median s", f"{s} us/task"]
    head += [f"{s}/raw" for s in systems if s != "raw"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        raw = row.median("raw")
        cells = [f"{row.workload} ({row.text})", f"{row.tasks:,}"]
        for s in systems:
            m = row.median(s)
            cells += ["-", "-"] if m is None else [f"{m:.3f}", f"{m / row.tasks * 1e6:.0f}"]
        for s in systems:
            if s == "raw":
                continue
            m = row.median(s)
            cells.append("-" if m is None or not raw else f"{m / raw:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help="comma-separated, from W1,W2,W3,W5,W6,W7,W8,W9 (default: W1,W2,W3,W5; '' for none)",
    )
    p.add_argument("--repeat", type=int, default=3, help="runs per system and workload")
    p.add_argument("--big", action="store_true", help="also run W6 (100,000 tasks) with dagflow")
    p.add_argument(
        "--unbatched",
        action="store_true",
        help="also run dagflow with batch_size=1 (column 'dagflow-b1') on W1, W3, W5, W6, W9",
    )
    p.add_argument("--no-prefect", action="store_true", help="skip Prefect even if installed")
    p.add_argument(
        "--prefect-max-tasks",
        type=int,
        default=10_000,
        help="skip Prefect on workloads with more tasks than this (default 10,000)",
    )
    p.add_argument(
        "--prefect-repeat",
        type=int,
        default=3,
        help="runs of Prefect per workload, at most --repeat (Prefect is slow; default 3)",
    )
    p.add_argument("--no-submit", action="store_true", help="skip the 10,000-task submit timing")
    p.add_argument(
        "--submit-repeat", type=int, default=1, help="runs of the submit timing (default 1)"
    )
    p.add_argument(
        "--remote",
        action="store_true",
        help="run on a `dask scheduler` and two `dask worker` processes on 127.0.0.1 "
        "(a remote cluster, as dagflow sees one) instead of a LocalCluster",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = p.parse_args(argv)
    names = [w.strip().upper() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in names if w not in WORKLOADS]
    if unknown:
        p.error(
            f"--workloads: unknown workload(s) {', '.join(unknown)}; choose from "
            + ",".join(WORKLOADS)
        )
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Each system records its runs where a new user's would go, in a fresh directory: the
    # benchmark neither fills nor depends on the user's own run history.
    if "DAGFLOW_DATABASE_URL" not in os.environ:
        os.environ.setdefault("DAGFLOW_HOME", tempfile.mkdtemp(prefix="dagflow-bench-"))
    os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dagflow-bench-prefect-"))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_ENABLED", "true")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # its ephemeral server starts slowly on a loaded machine (the default wait is 20 s)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    run_prefect = None if args.no_prefect else prefect_runner()
    systems: dict[str, Callable[[Workload], float]] = {}
    result: dict[str, Any] = {"environment": environment()}
    result["environment"]["cluster"] = "remote" if args.remote else "LocalCluster"
    with (
        remote_cluster() if args.remote else local_cluster() as address,
        Client(address) as client,
    ):
        systems["raw"] = lambda wl: run_raw(client, wl)
        systems["dagflow"] = lambda wl: run_dagflow(address, wl)
        if args.unbatched:
            systems["dagflow-b1"] = lambda wl: run_dagflow(address, wl, unbatched=True)
        if run_prefect is not None:
            systems["prefect"] = lambda wl: run_prefect(address, wl)
        warm = Workload("warm-up", "reduce", 20, "")
        for name, run in systems.items():
            note(f"warming up {name}")
            run(warm)
        rows: list[Row] = []
        for name in args.names:
            wl = WORKLOADS[name]
            row = Row(wl.name, wl.text, wl.tasks)
            rows.append(row)
            for rep in range(args.repeat):
                for system, run in systems.items():
                    if system == "prefect" and (
                        wl.tasks > args.prefect_max_tasks or rep >= args.prefect_repeat
                    ):
                        continue
                    if system == "dagflow-b1" and wl.kind not in UNBATCHED:
                        continue
                    if system == "prefect" and wl.kind not in PREFECT_KINDS:
                        continue
                    settle(client)
                    elapsed = run(wl)
                    row.times.setdefault(system, []).append(elapsed)
                    note(f"{wl.name} rep {rep + 1} {system}: {elapsed:.3f}s")
        result["workloads"] = [
            {
                "workload": r.workload,
                "tasks": r.tasks,
                "times_s": r.times,
                "median_s": {s: r.median(s) for s in r.times},
            }
            for r in rows
        ]
        if not args.no_submit:
            note("measuring the driver time to submit 10,000 tasks")
            result["submit_10k"] = measure_submit(client, address, 10_000, args.submit_repeat)
            note(f"submit: {json.dumps(result['submit_10k'])}")
        if args.big:
            note("running W6: 100,000 tasks")
            result["big"] = measure_big(client, address)
            note(f"W6: {json.dumps(result['big'])}")
        result["environment"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        settle(client)
        close_all()  # dagflow's own client to the cluster, before the cluster goes away
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(report(result, rows, list(systems)))
    return 0


@contextlib.contextmanager
def local_cluster() -> Iterator[str]:
    """2 worker processes x 1 thread, the scheduler inside this process."""
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield cluster.scheduler_address


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def remote_cluster() -> Iterator[str]:
    """A `dask scheduler` and two `dask worker` processes on 127.0.0.1, stopped by pid."""
    exe = str(Path(sys.executable).with_name("dask"))  # the `dask` command users run
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [exe, "scheduler", "--host", "127.0.0.1", "--port", str(port),
             "--dashboard-address", "127.0.0.1:0", "--preload", "dagflow.dashboard"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    ]  # fmt: skip
    try:
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [exe, "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                     "--nthreads", "1", "--no-dashboard"],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
            )  # fmt: skip
        with Client(address, timeout="60s") as probe:
            probe.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):  # workers first, then the scheduler
            proc.terminate()
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(20)


def report(result: dict[str, Any], rows: list[Row], systems: list[str]) -> str:
    env = result["environment"]
    out = [
        f"date: {env['date']}",
        "versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()),
        f"machine: {env['cpus']} cpus, load average {env['load_average']} before, "
        f"{env['load_average_after']} after",
        f"command: {env['command']}",
        f"cluster: {env.get('cluster', 'LocalCluster')} (2 workers x 1 thread, processes)",
        "",
        table(rows, systems),
    ]
    sub = result.get("submit_10k")
    if sub:
        out += [
            "",
            f"submit {sub['tasks']:,} tasks (driver, median): "
            f"dagflow build {sub['dagflow_build_s']:.3f}s"
            f" + compile/submit {sub['dagflow_submit_s']:.3f}s = {sub['dagflow_total_s']:.3f}s;"
            f" raw client.map {sub['raw_client_map_s']:.3f}s",
        ]
    big = result.get("big")
    if big:
        out += [
            "",
            f"W6 {big['tasks']:,} tasks: dagflow {big['dagflow_s']:.1f}s"
            f" ({big['dagflow_us_per_task']:.0f} us/task);"
            f" driver RSS {big['driver_rss_before_mb']:.0f}"
            f" MB before, peak {big['driver_peak_rss_after_mb']:.0f} MB"
            f" (peak before W6: {big['driver_peak_rss_before_mb']:.0f} MB)",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
