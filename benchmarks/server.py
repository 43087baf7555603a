"""The server's response times over a big history, and the run page's render time in Chromium.

    python benchmarks/server.py [--runs 100000] [--tasks 10000] [--repeat 200] [--postgres URL]

Records `runs` small flow runs (one task each, a tenth of them FAILED, spread over 30 days) and
one run of `tasks` mapped tasks through the real `StoreWriter`, into a scratch SQLite file and,
when a URL is given or `DAGFLOW_TEST_POSTGRES_URL` is set, a scratch PostgreSQL database. Then it
serves that database with the real app under uvicorn on 127.0.0.1 and times, with a keep-alive
client on the same machine, `repeat` requests of each: the runs list's first page (unfiltered and
by state), the big run, a page of its task runs, its Gantt chart; and `--page-repeat` loads of the
big run's page in headless Chromium until both charts are drawn. Not asserted anywhere: the
figures go to benchmarks/RESULTS.md. Goals: runs list p50 <= 100 ms, run page <= 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from dagflow.core.runs import FlowRunStarted, RunEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.store import StoreWriter, open_store

S = StateType
TOKEN = "bench-token"
CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"
DAY = 86_400.0


def small_run(t: float, failed: bool) -> list[RunEvent]:
    run_id = uuid.uuid4().hex
    key = f"work-{run_id[:8]}1[0]"
    end = S.FAILED if failed else S.COMPLETED
    return [
        FlowRunStarted(run_id, f"flow-{int(t) % 20}", None, {"i": int(t)}, t),
        StateEvent(run_id, None, None, S.PENDING, t),
        StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
        StateEvent(run_id, key, None, S.PENDING, t, 0, "", "work", 0),
        StateEvent(run_id, key, S.PENDING, S.RUNNING, t + 0.1, 1, "", "work", 0, "w"),
        StateEvent(run_id, key, S.RUNNING, end, t + 0.2, 1, "boom" if failed else "", "work", 0),
        StateEvent(run_id, None, S.RUNNING, end, t + 0.3, 1, "boom" if failed else ""),
    ]


def big_run(n: int, t: float) -> tuple[str, list[RunEvent]]:
    run_id = uuid.uuid4().hex
    out: list[RunEvent] = [
        FlowRunStarted(run_id, "big", None, {"n": n}, t),
        StateEvent(run_id, None, None, S.PENDING, t),
        StateEvent(run_id, None, S.PENDING, S.RUNNING, t, 1),
    ]
    for i in range(n):
        key = f"work-{run_id[:8]}1[{i}]"
        s = t + i * 0.001
        out.append(StateEvent(run_id, key, None, S.PENDING, t, 0, "", "work", i))
        out.append(StateEvent(run_id, key, S.PENDING, S.RUNNING, s, 1, "", "work", i, "w"))
        out.append(StateEvent(run_id, key, S.RUNNING, S.COMPLETED, s + 0.05, 1, "", "work", i))
    out.append(StateEvent(run_id, None, S.RUNNING, S.COMPLETED, t + n * 0.001 + 1, 1))
    return run_id, out


def seed(url: str, runs: int, tasks: int) -> str:
    store = open_store(url)
    writer = StoreWriter(store.url)
    start = time.perf_counter()
    now = time.time()
    for i in range(runs):
        writer.handle(small_run(now - 30 * DAY + i * (30 * DAY / runs), failed=i % 10 == 0))
        if i % 5000 == 4999:
            writer.flush(600)
    big_id, events = big_run(tasks, now)
    for i in range(0, len(events), 500):
        writer.handle(events[i : i + 500])
    writer.close(600)
    store.close()
    print(f"  seeded {runs:,} runs + one of {tasks:,} tasks in {time.perf_counter() - start:.0f} s")
    return big_id


def timings(http: httpx.Client, path: str, repeat: int) -> tuple[float, float]:
    http.get(path).raise_for_status()  # warm
    seen = []
    for _ in range(repeat):
        t = time.perf_counter()
        http.get(path).raise_for_status()
        seen.append((time.perf_counter() - t) * 1000)
    seen.sort()
    return statistics.median(seen), seen[min(len(seen) - 1, int(len(seen) * 0.99))]


def page_render(url: str, run_id: str, repeat: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    out = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(f"{url}/login#token={TOKEN}")
        page.wait_for_url("**/runs")
        for _ in range(repeat):
            t = time.perf_counter()
            page.goto(f"{url}/runs/{run_id}")
            page.wait_for_selector("#gantt[data-rendered=true]", timeout=60_000)
            page.wait_for_selector("#graph[data-rendered=true]", timeout=60_000)
            out.append(time.perf_counter() - t)
        browser.close()
    return out


def measure(label: str, url: str, args: argparse.Namespace) -> None:
    from dagflow.server.app import create_app
    from tests.server.conftest import ServerThread  # the tests' uvicorn-in-a-thread

    print(f"{label}:")
    big = seed(url, args.runs, args.tasks)
    store = open_store(url)
    rows: list[tuple[str, Any, Any]] = []
    with (
        ServerThread(create_app(store, TOKEN)) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http,
    ):
        cookie = {"dagflow_session": store_session()}
        for name, path, client in [
            ("runs list, first page (50)", "/api/v1/runs", http),
            ("runs list, state=FAILED", "/api/v1/runs?state=FAILED", http),
            ("runs list, flow=flow-7", "/api/v1/runs?flow=flow-7", http),
            (f"one run ({args.tasks:,} tasks)", f"/api/v1/runs/{big}", http),
            ("its task runs, first 100", f"/api/v1/runs/{big}/task-runs?limit=100", http),
            ("its Gantt chart (json_item)", f"/runs/{big}/charts/gantt", None),
        ]:
            if client is None:
                with httpx.Client(base_url=server.url, cookies=cookie) as pages:
                    p50, p99 = timings(pages, path, max(20, args.repeat // 10))
            else:
                p50, p99 = timings(client, path, args.repeat)
            rows.append((name, p50, p99))
            print(f"  {name:<32} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms")
        if os.access(CHROMIUM, os.X_OK):
            renders = page_render(server.url, big, args.page_repeat)
            median = statistics.median(renders)
            print(
                f"  run page in Chromium (both charts drawn): median {median:.2f} s,"
                f" max {max(renders):.2f} s over {len(renders)} loads"
            )
    store.close()


def store_session() -> str:
    from dagflow.server.auth import Auth

    return Auth(TOKEN).session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--page-repeat", type=int, default=5)
    parser.add_argument("--postgres", default=os.environ.get("DAGFLOW_TEST_POSTGRES_URL"))
    parser.add_argument("--no-sqlite", action="store_true")
    args = parser.parse_args()
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            measure("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args)
    if args.postgres:
        name = f"dagflow_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
            measure("PostgreSQL", url, args)
        finally:
            from dagflow.runtime import close_stores

            close_stores()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
