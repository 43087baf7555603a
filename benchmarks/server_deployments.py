"""The deployments API and pages with many deployments registered (issue #13, deployments part).

    python benchmarks/server_deployments.py [--deployments 1000] [--repeat 50]

Registers `deployments` deployments of one flow (half on cron strings in a time zone, half on
intervals) in a scratch SQLite file, serves it with the real app under uvicorn on 127.0.0.1, and
times with a keep-alive client: the deployments list (every deployment's schedules in words and
its next five ticks), one deployment (with its parameter schema: the flow's file is imported once,
then cached), the Deployments page, one deployment's page with its Run form, and creating a run
through the API (parameters validated against the flow, the run inserted). Not asserted
anywhere: the figures go to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from dagflow.entrypoints import load_flow
from dagflow.scheduler.definitions import build
from dagflow.store import open_store

TOKEN = "bench-token"
FLOWS = """
from dagflow import flow

@flow
def report(day: str, rows: int = 10, tags: list[str] | None = None) -> int:
    return rows
"""


def timed(call: object, repeat: int) -> tuple[float, float]:
    assert callable(call)
    call()  # warm
    seen = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        seen.append((time.perf_counter() - t) * 1000)
    seen.sort()
    return statistics.median(seen), seen[min(len(seen) - 1, int(len(seen) * 0.99))]


def main() -> None:
    from dagflow.server.app import create_app
    from dagflow.server.auth import Auth
    from tests.server.conftest import ServerThread

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reports.py"
        path.write_text(FLOWS)
        flow = load_flow(f"{path}:report")
        deps = []
        for i in range(args.deployments):
            if i % 2:
                dep = build(flow, f"d{i}", interval=60 + i, parameters={"day": "mon"})
            else:
                cron = f"{i % 60} {i % 24} * * 1-5"
                dep = build(
                    flow, f"d{i}", cron=cron, timezone="Europe/Paris", parameters={"day": "fri"}
                )
            deps.append(dep)
        store = open_store(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.save_deployments(deps)
        cookie = {"dagflow_session": Auth(TOKEN).session}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        with (
            ServerThread(create_app(store, TOKEN)) as server,
            httpx.Client(base_url=server.url, headers=headers, timeout=60) as api,
            httpx.Client(base_url=server.url, cookies=cookie, timeout=60) as pages,
        ):

            def get(client: httpx.Client, url: str) -> object:
                return lambda: client.get(url).raise_for_status()

            def create() -> None:
                body = {"params": ["rows=3"], "parameters": {"day": "tue"}}
                api.post("/api/v1/deployments/report/d1/runs", json=body).raise_for_status()

            n = args.deployments
            for name, call, repeat in [
                (f"GET deployments ({n:,})", get(api, "/api/v1/deployments"), args.repeat // 5),
                ("GET one deployment (schema)", get(api, "/api/v1/deployments/report/d1"), 0),
                ("POST a run (validated)", create, 0),
                (f"Deployments page ({n:,})", get(pages, "/deployments"), args.repeat // 5),
                ("one deployment's page + form", get(pages, "/deployments/report/d2"), 0),
            ]:
                p50, p99 = timed(call, repeat or args.repeat)
                print(f"  {name:<32} p50 {p50:8.1f} ms   p99 {p99:8.1f} ms")
        store.close()


if __name__ == "__main__":
    main()
