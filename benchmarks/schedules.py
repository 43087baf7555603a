"""Schedules: claim latency of 1,000 deployments due at one instant, and claim -> flow body.

Part 1 (claims). 1,000 deployments whose next tick is the same instant T are registered in a
fresh database (SQLite file or PostgreSQL database); one or two real serve processes (the
`Server` loop of `dagflow serve`, each in its own Python process) create the ticks ahead of T
and claim them when due. Their child starter is replaced by one that records the run id and
starts nothing, so what is measured is the scheduler (tick creation, claims, limits) and the
database, not 1,000 Python processes on a 2-core machine. Reported: time from T to each run's
claim being committed and the run handed to its (recording) child starter: p50, p99, max; and
duplicates (ticks with more than one run, runs
claimed by more than one process): both must be 0.

Part 2 (claim -> body). One `dagflow serve` process on the shared local cluster runs N ticks of
a deployment with real child processes; the flow body logs `time.time()` as its first line.
Reported: time from the claim to the body's first line, p50 and max, for the fork server
(default) and a fresh interpreter per run.

    python benchmarks/schedules.py                      # everything (needs PostgreSQL for pg)
    python benchmarks/schedules.py --db sqlite --servers 1 --skip-body
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PG_URL = os.environ.get(
    "DAGFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
FLOW = "bench"


def deployments(n: int, due: float) -> list:
    from dagflow.core.deployments import Deployment
    from dagflow.core.schedules import IntervalSchedule

    return [
        Deployment(f"d{i:04d}", FLOW, "bench.py:bench", {}, (IntervalSchedule(3600.0, due),))
        for i in range(n)
    ]


# ----------------------------------------------------------------------------- a serve process


def serve_worker(url: str, n: int, due: float, ids_file: str, limit: int) -> None:
    """A serve process whose children only record their run id (see the module docstring)."""
    from dagflow.scheduler.service import Served, Server
    from dagflow.store import open_store

    out = open(ids_file, "a", buffering=1)  # noqa: SIM115 (open for the process's life)

    class Recorded:
        pid = 0

        def poll(self) -> int:
            return 0

        def send_signal(self, sig: int) -> None:
            pass

    def spawn(run_id: str, served_by: str, cluster: str) -> Recorded:
        out.write(f"{run_id} {time.time()!r}\n")
        return Recorded()

    store = open_store(url)
    served = [Served(d, "unused") for d in deployments(n, due)]
    Server(store, served, limit=limit, spawn=spawn).run()
    store.close()


# ----------------------------------------------------------------------------- part 1


def fresh_database(kind: str, tmp: Path) -> tuple[str, object]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:6]}.db'}", None
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"dagflow_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False), (admin, name)


def drop_database(handle: object) -> None:
    if handle is None:
        return
    from sqlalchemy import text

    admin, name = handle  # type: ignore[misc]
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def claims(kind: str, servers: int, n: int, lead: float, limit: int) -> dict[str, float]:
    from sqlalchemy import func, select

    from dagflow.store import open_store
    from dagflow.store.schema import flow_runs

    tmp = Path(tempfile.mkdtemp(prefix="dagflow-bench-"))
    url, handle = fresh_database(kind, tmp)
    store = open_store(url)
    due = float(int(time.time() + lead))
    store.save_deployments(deployments(n, due))
    procs, files = [], []
    for i in range(servers):
        ids = tmp / f"ids-{i}.txt"
        files.append(ids)
        here = str(Path(__file__).parent)
        code = (
            f"import sys; sys.path.insert(0, {here!r}); from schedules import serve_worker; "
            f"serve_worker({url!r}, {n}, {due!r}, {str(ids)!r}, {limit})"
        )
        env = {**os.environ, "DAGFLOW_HOME": str(tmp)}
        procs.append(
            subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.DEVNULL)
        )
    try:
        deadline = due + 60
        claimed = 0
        while time.time() < deadline:
            with store.engine.connect() as conn:
                claimed = (
                    conn.scalar(select(func.count()).where(flow_runs.c.claimed_by.is_not(None)))
                    or 0
                )
            if claimed >= n:
                break
            time.sleep(0.2)
        # read the claims now: a stopping serve process gives back runs it did not start
        with store.engine.connect() as conn:
            rows = list(
                conn.execute(
                    select(
                        flow_runs.c.deployment_id,
                        flow_runs.c.scheduled_time,
                        flow_runs.c.claimed_at,
                    )
                )
            )
    finally:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
    store.close()
    drop_database(handle)
    per_tick: dict[tuple[str, float], int] = {}
    for row in rows:
        key = (row.deployment_id, row.scheduled_time)
        per_tick[key] = per_tick.get(key, 0) + 1
    handed: list[list[tuple[str, float]]] = []
    for f in files:
        lines = f.read_text().splitlines() if f.exists() else []
        handed.append([(line.split()[0], float(line.split()[1])) for line in lines])
    all_ids = [run_id for server in handed for run_id, _ in server]
    id_sets = [{run_id for run_id, _ in server} for server in handed]
    # from the due instant to the run handed to its child process (claim committed)
    latencies = sorted(t - due for server in handed for _, t in server)
    return {
        "runs": len(rows),
        "claimed": len({row.deployment_id for row in rows if row.claimed_at is not None}),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan"),
        "max": latencies[-1] if latencies else float("nan"),
        "duplicate_ticks": sum(c - 1 for c in per_tick.values() if c > 1),
        "claimed_twice": len(all_ids) - len(set(all_ids)),
        "per_server": [len(s) for s in id_sets],
    }


# ----------------------------------------------------------------------------- part 2

BODY_FLOW = """
import time
from dagflow import flow, get_run_logger

@flow
def body(n: int = 0) -> float:
    t = time.time()
    get_run_logger().info("BODY %r", t)
    return t
"""


def claim_to_body(runs: int, fresh: bool) -> dict[str, float]:
    """`dagflow serve` on the shared local cluster runs `runs` ticks; claim -> body latency."""
    from dagflow.store import open_store

    tmp = Path(tempfile.mkdtemp(prefix="dagflow-bench-body-"))
    (tmp / "bodyflow.py").write_text(BODY_FLOW)
    url = f"sqlite:///{tmp / 'body.db'}"
    env = {**os.environ, "DAGFLOW_HOME": str(tmp), "DAGFLOW_DATABASE_URL": url}
    env.pop("DAGFLOW_CLUSTER", None)
    if fresh:
        env["DAGFLOW_BENCH_FRESH_PROCESS"] = "1"
    code = (
        "import os, sys\n"
        "from dagflow.scheduler import service, processes\n"
        "if os.environ.get('DAGFLOW_BENCH_FRESH_PROCESS'):\n"
        "    orig = service.Server.__init__\n"
        "    def init(self, *a, **k):\n"
        "        k['spawn'] = processes.fresh_process\n"
        "        orig(self, *a, **k)\n"
        "    service.Server.__init__ = init\n"
        "from dagflow.cli import main\n"
        "sys.argv = ['dagflow', 'serve', 'bodyflow.py:body', '--interval', '2', "
        "'--max-active-runs', '3', '--limit', '3']\n"
        "main()\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=tmp, env=env, stderr=subprocess.DEVNULL
    )
    store = open_store(url)
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            done = [r for r in store.list_flow_runs(limit=1000) if r.state.is_final]
            if len(done) >= runs:
                break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
    from sqlalchemy import select

    from dagflow.store.schema import flow_runs

    with store.engine.connect() as conn:
        claimed_at = dict(conn.execute(select(flow_runs.c.id, flow_runs.c.claimed_at)).all())
    delays = []
    for run in store.list_flow_runs(limit=1000):
        if not run.state.is_success:
            continue
        body = [ev for ev in run.logs() if ev.message.startswith("BODY ")]
        if body and claimed_at.get(run.id):
            delays.append(float(body[0].message.split()[1]) - claimed_at[run.id])
    store.close()
    delays.sort()
    return {
        "runs": len(delays),
        "p50": statistics.median(delays) if delays else float("nan"),
        "max": delays[-1] if delays else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--servers", choices=["1", "2", "both"], default="both")
    parser.add_argument("--lead", type=float, default=25.0, help="seconds until the due instant")
    parser.add_argument("--limit", type=int, default=None, help="serve --limit (default: all)")
    parser.add_argument("--body-runs", type=int, default=12)
    parser.add_argument("--skip-body", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    counts = [1, 2] if args.servers == "both" else [int(args.servers)]
    limit = args.limit or args.deployments
    print(
        f"{args.deployments} deployments due at one instant, --limit {limit}: latency from that "
        "instant to each run claimed and handed to its child starter"
    )
    print(
        f"{'database':<10} {'servers':>7} {'claimed':>8} {'p50 s':>7} {'p99 s':>7} "
        f"{'max s':>7} {'dup ticks':>9} {'claimed 2x':>10}  per server"
    )
    for kind in kinds:
        for servers in counts:
            r = claims(kind, servers, args.deployments, args.lead, limit)
            print(
                f"{kind:<10} {servers:>7} {r['claimed']:>8} {r['p50']:>7.3f} {r['p99']:>7.3f} "
                f"{r['max']:>7.3f} {r['duplicate_ticks']:>9} {r['claimed_twice']:>10}  "
                f"{r['per_server']}"
            )
    if args.skip_body:
        return
    print(f"\nclaim -> flow body in the child process ({args.body_runs} runs, shared LocalCluster)")
    for fresh in (False, True):
        r = claim_to_body(args.body_runs, fresh)
        label = "fresh interpreter" if fresh else "fork server"
        print(f"{label:<18} runs {r['runs']:>3}  p50 {r['p50']:.3f} s  max {r['max']:.3f} s")


if __name__ == "__main__":
    main()
