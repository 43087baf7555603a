"""Flow-run triggers chain real runs A -> B -> C through `dagflow serve`; two serve processes
watching one folder on one PostgreSQL database start exactly one run per file."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagflow.store import open_store
from tests.scheduler.serving import ServeProcess, dagflow, environment, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FLOWS = """
from dagflow import flow

@flow(persist_results=True)
def first(n: int = 1) -> int:
    return n * 100

@flow
def second(upstream: str, n: int, got: int) -> int:
    return n * 2

@flow
def third(upstream: str) -> str:
    return upstream

@flow
def ingest(path: str) -> str:
    return path
"""

CHAIN = """
deployments:
  - name: a
    entrypoint: flows.py:first
  - name: b
    entrypoint: flows.py:second
    parameters: {upstream: "{{ event.run_id }}", n: "{{ event.parameters.n }}",
                 got: "{{ event.result }}"}
    triggers: [{flow_run: first/a}]
  - name: c
    entrypoint: flows.py:third
    parameters: {upstream: "{{ event.run_id }}"}
    triggers: [{flow_run: second, states: [COMPLETED]}]
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "inbox").mkdir()
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for proc in started:
        proc.stop()


def test_a_run_ending_starts_the_next_deployment_along_a_chain(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    (workdir / "dagflow.yaml").write_text(CHAIN)
    env = environment(workdir / "home", sqlite_url)
    serve = ServeProcess(["dagflow.yaml"], workdir, env)
    processes.append(serve)
    serve.wait_for_log("serving 3 deployment(s)")
    created = dagflow(["deployments", "run", "first/a", "-p", "n=5"], workdir, env)
    assert created.returncode == 0, created.stderr

    def runs() -> dict[str, list[object]]:
        store = open_store(sqlite_url)
        try:
            out: dict[str, list[object]] = {}
            for r in store.list_flow_runs(limit=100):
                out.setdefault(str(r.deployment), []).append(r)
            return out
        finally:
            store.close()

    def c_done() -> bool:
        found = runs().get("third/c", [])
        return bool(found) and all(r.state.is_final for r in found)  # type: ignore[attr-defined]

    wait_until(c_done, 120, "the chain to reach C")
    time.sleep(2.0)  # nothing else fires
    found = runs()
    assert {k: len(v) for k, v in found.items()} == {"first/a": 1, "second/b": 1, "third/c": 1}
    a, b, c = found["first/a"][0], found["second/b"][0], found["third/c"][0]
    assert b.parameters == {"upstream": a.id, "n": 5, "got": 500}  # type: ignore[attr-defined]
    assert c.parameters == {"upstream": b.id}  # type: ignore[attr-defined]
    assert c.state.value == "COMPLETED" and a.origin == "manual"  # type: ignore[attr-defined]
    listed = dagflow(["events", "ls"], workdir, env)
    assert listed.stdout.count("flow_run") == 2 and "manual" in listed.stdout


@pytest.mark.postgres
def test_two_serve_processes_on_one_postgres_database_start_one_run_per_file(
    workdir: Path, pg_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", pg_url)
    args = ["flows.py:ingest", "--on-file", "inbox/*.csv", "--settle", "0.2"]
    for name in ("one", "two"):
        proc = ServeProcess(args, workdir, env, name)
        processes.append(proc)
    for proc in processes:
        proc.wait_for_log("watching files")
    names = [f"f{i:03d}.csv" for i in range(150)]
    for name in names:
        (workdir / "inbox" / name).write_text("x\n")

    def counts() -> Counter[str]:
        store = open_store(pg_url)
        try:
            return Counter(str(r.parameters.get("path")) for r in store.list_flow_runs(limit=1000))
        finally:
            store.close()

    wait_until(lambda: len(counts()) >= len(names), 120, "a run per file")
    time.sleep(2.0)
    found = counts()
    assert len(found) == len(names) and set(found.values()) == {1}
