"""What a user waits for before and around the work: imports, a whole script, the CLI's start.

Run from the repository root:

    python -m benchmarks.startup [--repeat 5] [--tasks 1000] [--json]

Every figure is the median wall time of a fresh interpreter (a subprocess), so nothing is warm:

- `import dagflow` against `import distributed` (the floor any Dask program pays);
- `python flow.py`: a script whose `@flow` maps a no-op task over `--tasks` items on the
  default `local` cluster (worker processes), against the same work written with raw Dask
  futures (`LocalCluster` of the same shape, `client.map`, `wait`), end to end: start,
  cluster, run, record, shut down;
- `dagflow --help` and `dagflow runs ls` (a CLI command that only reads the run history).

Each system records into a fresh `DAGFLOW_HOME`. Nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

RAW_SCRIPT = textwrap.dedent(
    """
    import os
    from distributed import Client, LocalCluster, wait

    def noop(i):
        return None

    if __name__ == "__main__":
        n = int(os.environ["BENCH_TASKS"])
        with LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address="127.0.0.1:0") as cluster:
            with Client(cluster) as client:
                wait(client.map(noop, range(n), pure=False))
    """
)

DAGFLOW_SCRIPT = textwrap.dedent(
    """
    import os
    from dagflow import flow, task

    @task
    def noop(i):
        return None

    @flow(cluster="local")
    def many(n: int) -> None:
        noop.map(range(n))

    if __name__ == "__main__":
        many(int(os.environ["BENCH_TASKS"]))
    """
)


def timed(cmd: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return elapsed


def median_of(repeat: int, cmd: list[str], env: dict[str, str], cwd: Path) -> list[float]:
    return [timed(cmd, env, cwd) for _ in range(repeat)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dagflow-startup-"))
    (work / "raw_flow.py").write_text(RAW_SCRIPT)
    (work / "dagflow_flow.py").write_text(DAGFLOW_SCRIPT)
    env = {
        **os.environ,
        "DAGFLOW_HOME": str(work / "home"),
        "BENCH_TASKS": str(args.tasks),
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("DAGFLOW_DATABASE_URL", None)
    env.pop("DAGFLOW_CLUSTER", None)
    py = sys.executable
    dagflow_cmd = str(Path(py).with_name("dagflow"))
    # one warm-up of each script: the first start pays disk caches and the database's creation
    timed([py, "dagflow_flow.py"], env, work)
    timed([py, "raw_flow.py"], env, work)
    results: dict[str, list[float]] = {
        "import distributed": [],
        "import dagflow": [],
        "python raw_flow.py": [],
        "python dagflow_flow.py": [],
        "dagflow --help": [],
        "dagflow runs ls": [],
    }
    for _ in range(args.repeat):  # interleaved, so the machine's noise falls on all alike
        results["import distributed"] += median_of(1, [py, "-c", "import distributed"], env, work)
        results["import dagflow"] += median_of(1, [py, "-c", "import dagflow"], env, work)
        results["python raw_flow.py"] += median_of(1, [py, "raw_flow.py"], env, work)
        results["python dagflow_flow.py"] += median_of(1, [py, "dagflow_flow.py"], env, work)
        results["dagflow --help"] += median_of(1, [dagflow_cmd, "--help"], env, work)
        results["dagflow runs ls"] += median_of(1, [dagflow_cmd, "runs", "ls"], env, work)
    medians = {k: statistics.median(v) for k, v in results.items()}
    out: dict[str, Any] = {
        "tasks": args.tasks,
        "repeat": args.repeat,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "median_s": medians,
        "times_s": results,
        "import_dagflow_minus_distributed_s": medians["import dagflow"]
        - medians["import distributed"],
        "script_ratio": medians["python dagflow_flow.py"] / medians["python raw_flow.py"],
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"tasks: {args.tasks}, repeat: {args.repeat}, load average: {out['load_average']}")
    print("| measurement | median s | runs |")
    print("|---|---|---|")
    for name, values in results.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {medians[name]:.3f} | {runs} |")
    extra = out["import_dagflow_minus_distributed_s"]
    print(
        f"\nimport dagflow - import distributed: {extra:+.3f} s;"
        f" python dagflow_flow.py / python raw_flow.py: {out['script_ratio']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
