"""Recorded task-state transitions per second through the batched writer, SQLite and PostgreSQL.

    python benchmarks/store.py [--runs 20] [--tasks 1000] [--postgres URL]

Feeds the real `StoreWriter` the events of `runs` flow runs of `tasks` tasks each (PENDING,
RUNNING, COMPLETED per task, plus the flow's own transitions), in batches of 500 as the engine
hands them over, and times until every transition is committed. PostgreSQL is measured when a URL
is given or `DAGFLOW_TEST_POSTGRES_URL` is set, in a scratch database dropped afterwards.
Goals: 20,000 transitions/s on SQLite, 5,000/s on PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from dagflow.core.runs import FlowRunStarted, RunEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.store import StoreWriter, open_store
from dagflow.store.schema import state_history

S = StateType
GOALS = {"sqlite": 20_000, "postgresql": 5_000}


def events_of_run(n_tasks: int) -> list[RunEvent]:
    run_id, t = uuid.uuid4().hex, time.time()
    out: list[RunEvent] = [
        FlowRunStarted(run_id, "bench", None, {"n": n_tasks}, t),
        StateEvent(run_id, None, None, S.PENDING, t),
        StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
    ]
    token = run_id[:8]
    for i in range(n_tasks):
        key = f"work-{token}1[{i}]"
        out.append(StateEvent(run_id, key, None, S.PENDING, t, 0, "", "work", i))
    for i in range(n_tasks):
        key = f"work-{token}1[{i}]"
        out.append(StateEvent(run_id, key, S.PENDING, S.RUNNING, t, 1, "", "work", i, "w1"))
        out.append(StateEvent(run_id, key, S.RUNNING, S.COMPLETED, t, 1, "", "work", i, "w1"))
    out.append(StateEvent(run_id, None, S.RUNNING, S.COMPLETED, t, 1))
    return out


def measure(url: str, runs: int, tasks: int) -> tuple[int, float]:
    store = open_store(url)
    writer = StoreWriter(store.url)
    streams = [events_of_run(tasks) for _ in range(runs)]
    expected = sum(1 for s in streams for ev in s if isinstance(ev, StateEvent))
    start = time.perf_counter()
    for stream in streams:
        for i in range(0, len(stream), 500):
            writer.handle(stream[i : i + 500])
    if not writer.wait_committed(600):
        raise SystemExit(f"writer did not finish: {writer.last_error}")
    elapsed = time.perf_counter() - start
    writer.close()
    with store.engine.connect() as conn:
        recorded = conn.scalar(select(func.count()).select_from(state_history))
    store.close()
    if recorded != expected:
        raise SystemExit(f"recorded {recorded} transitions, expected {expected}")
    return expected, elapsed


def scratch_postgres(base: str) -> tuple[str, str]:
    name = f"dagflow_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False), name


def drop_postgres(base: str, name: str) -> None:
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--postgres", default=os.environ.get("DAGFLOW_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    rows: list[tuple[str, int, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        n, secs = measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args.runs, args.tasks)
        rows.append(("sqlite", n, secs))
    if args.postgres:
        url, name = scratch_postgres(args.postgres)
        try:
            n, secs = measure(url, args.runs, args.tasks)
            rows.append(("postgresql", n, secs))
        finally:
            drop_postgres(args.postgres, name)
    print(f"{'database':<12}{'transitions':>12}{'seconds':>10}{'per second':>12}{'goal':>9}")
    for backend, n, secs in rows:
        rate = n / secs
        verdict = "ok" if rate >= GOALS[backend] else "BELOW"
        print(f"{backend:<12}{n:>12,}{secs:>10.2f}{rate:>12,.0f}{GOALS[backend]:>9,} {verdict}")


if __name__ == "__main__":
    main()
