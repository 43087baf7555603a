"""Triggers: event -> run RUNNING latency (a file drop, a new row) and a burst of 10,000 files.

Each part starts a real `dagflow serve` process (its shared LocalCluster, a child process per
run) on a fresh SQLite database in a temporary directory, and reads the runs from the database.

- **File drop -> RUNNING**: `--on-file "inbox/*.csv"`; one file written every 1.5 s; latency
  from just before the write to the run's RUNNING transition (`state_history`), p50/p99/max, for
  the settle times given (the settle time is part of the latency by design).
- **New row -> RUNNING**: a rows trigger polling every `--row-interval` seconds on an SQLite
  table; one row inserted every 1.3 s; from the insert's commit to RUNNING. Goal: interval +
  200 ms at most.
- **Burst**: N files written as fast as the test can (one thread) into the watched folder while
  serve runs (`--max-active-runs 1`: the runs themselves are not measured); time from the first
  write to every run created, duplicates (files with more than one run: must be 0), and the
  serve process's peak resident memory (VmHWM).

    python benchmarks/triggers.py                     # all three, defaults
    python benchmarks/triggers.py --drops 20 --burst 10000 --settles 0.5 0.1
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

DAGFLOW = str(Path(sys.executable).with_name("dagflow"))
FLOWS = """
from dagflow import flow

@flow
def ingest(path: str) -> str:
    return path

@flow
def bill(order: int) -> int:
    return order
"""


class Serve:
    def __init__(self, args: list[str], cwd: Path, url: str) -> None:
        env = os.environ.copy()
        env.pop("DAGFLOW_CLUSTER", None)
        env["DAGFLOW_HOME"] = str(cwd / "home")
        env["DAGFLOW_DATABASE_URL"] = url
        self.log = (cwd / f"serve-{time.monotonic_ns()}.log").open("wb")
        self.proc = subprocess.Popen(
            [DAGFLOW, "serve", *args], cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.path = Path(self.log.name)

    def wait_for(self, needle: str, timeout: float = 120) -> None:
        end = time.monotonic() + timeout
        while needle not in self.path.read_text(errors="replace"):
            if time.monotonic() > end or self.proc.poll() is not None:
                raise RuntimeError(self.path.read_text(errors="replace")[-2000:])
            time.sleep(0.1)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self.log.close()


def running_times(db: Path) -> dict[str, float]:
    """Run parameters (path or order) -> when the run went RUNNING."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT r.parameters, h.time FROM flow_runs r JOIN state_history h "
            "ON h.run_id = r.id AND h.task_key = '' AND h.to_state = 'RUNNING'"
        ).fetchall()
    return dict(rows)


def summary(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
    return (
        f"n={len(values)} p50={statistics.median(values):.3f}s p99={p99:.3f}s max={values[-1]:.3f}s"
    )


def file_latency(drops: int, settle: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "flows.py").write_text(FLOWS)
        (work / "inbox").mkdir()
        db = work / "dagflow.db"
        args = ["flows.py:ingest", "--on-file", "inbox/*.csv", "--settle", str(settle),
                "--max-active-runs", "4"]  # fmt: skip
        serve = Serve(args, work, f"sqlite:///{db}")
        try:
            serve.wait_for("watching files")
            time.sleep(2.0)
            dropped: dict[str, float] = {}
            for i in range(drops):
                path = work / "inbox" / f"drop{i:03d}.csv"
                dropped[str(path)] = time.time()
                path.write_text("a,b\n")
                time.sleep(1.5)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                found = running_times(db)
                if len(found) >= drops:
                    break
                time.sleep(0.5)
            import json

            lat = []
            for params, t in running_times(db).items():
                path = json.loads(params)["path"]
                lat.append(t - dropped[path])
            return lat
        finally:
            serve.stop()


def row_latency(rows: int, interval: float) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "flows.py").write_text(FLOWS)
        shop = work / "shop.db"
        with sqlite3.connect(shop) as conn:
            conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
        (work / "rows.yaml").write_text(
            f"""
deployments:
  - name: orders
    entrypoint: flows.py:bill
    max_active_runs: 4
    parameters: {{order: "{{{{ event.row.id }}}}"}}
    triggers:
      - rows: sqlite:///{shop}
        query: SELECT id FROM orders WHERE id > :watermark ORDER BY id
        interval: {interval}
"""
        )
        db = work / "dagflow.db"
        serve = Serve(["rows.yaml"], work, f"sqlite:///{db}")
        try:
            serve.wait_for("watching rows")
            time.sleep(2.0)
            inserted: dict[int, float] = {}
            for i in range(1, rows + 1):
                with sqlite3.connect(shop) as conn:
                    conn.execute("INSERT INTO orders (id, total) VALUES (?, 1.0)", (i,))
                inserted[i] = time.time()  # committed
                time.sleep(1.3)
            end = time.monotonic() + 30
            while time.monotonic() < end and len(running_times(db)) < rows:
                time.sleep(0.5)
            import json

            return [t - inserted[json.loads(p)["order"]] for p, t in running_times(db).items()]
        finally:
            serve.stop()


def burst(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "flows.py").write_text(FLOWS)
        (work / "inbox").mkdir()
        db = work / "dagflow.db"
        args = ["flows.py:ingest", "--on-file", "inbox/*.csv", "--settle", "0.5", "--limit", "1"]
        serve = Serve(args, work, f"sqlite:///{db}")
        try:
            serve.wait_for("watching files")
            time.sleep(2.0)
            rss_before = serve.peak_rss_mb()
            t0 = time.time()
            for i in range(n):
                (work / "inbox" / f"b{i:05d}.csv").write_text("x\n")
            written = time.time() - t0
            created = None
            end = time.monotonic() + 600
            while time.monotonic() < end:
                with sqlite3.connect(db) as conn:
                    count = conn.execute("SELECT count(*) FROM flow_runs").fetchone()[0]
                if count >= n:
                    created = time.time() - t0
                    break
                time.sleep(0.2)
            time.sleep(3.0)
            with sqlite3.connect(db) as conn:
                params = [p for (p,) in conn.execute("SELECT parameters FROM flow_runs")]
            counts = Counter(params)
            return {
                "files": n,
                "write_s": written,
                "all_created_s": created if created is not None else float("nan"),
                "runs": len(params),
                "duplicates": sum(1 for c in counts.values() if c > 1),
                "rss_before_mb": rss_before,
                "peak_rss_mb": serve.peak_rss_mb(),
            }
        finally:
            serve.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drops", type=int, default=20)
    parser.add_argument("--settles", type=float, nargs="*", default=[0.5, 0.1])
    parser.add_argument("--rows", type=int, default=15)
    parser.add_argument("--row-interval", type=float, default=1.0)
    parser.add_argument("--burst", type=int, default=10_000)
    parser.add_argument("--skip", nargs="*", default=[], choices=["files", "rows", "burst"])
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}")
    if "files" not in args.skip:
        for settle in args.settles:
            lat = file_latency(args.drops, settle)
            print(f"file drop -> RUNNING (settle {settle}s): {summary(lat)}")
    if "rows" not in args.skip:
        lat = row_latency(args.rows, args.row_interval)
        print(f"new row -> RUNNING (poll every {args.row_interval}s): {summary(lat)}")
    if "burst" not in args.skip:
        print(f"burst: {burst(args.burst)}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
