"""Files trigger as a user runs it: `dagflow serve FILE.py:FLOW --on-file GLOB`, real files
written into a temporary directory (one slowly, in pieces), a restart in the middle of a burst.
Runs are counted per file from the database the serve processes write: exactly one each."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagflow.store import open_store
from tests.scheduler.serving import ServeProcess, dagflow, environment, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FLOWS = """
from dagflow import flow, get_run_logger

@flow
def ingest(path: str) -> int:
    with open(path) as f:
        n = sum(1 for _ in f)
    get_run_logger().info("lines=%d", n)
    return n
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


def runs_by_path(url: str) -> Counter[str]:
    store = open_store(url)
    try:
        runs = store.list_flow_runs(limit=10_000)
        return Counter(str(r.parameters.get("path")) for r in runs if r.deployment)
    finally:
        store.close()


def write_slowly(path: Path, pieces: int, pause: float) -> None:
    with path.open("w") as f:
        for i in range(pieces):
            f.write(f"line {i}\n")
            f.flush()
            time.sleep(pause)


def test_each_file_starts_one_run_with_its_path_and_a_slow_file_fires_when_done(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", sqlite_url)
    (workdir / "inbox" / "before.csv").write_text("a\nb\n")  # there before serve: caught up
    serve = ServeProcess(["flows.py:ingest", "--on-file", "inbox/*.csv"], workdir, env)
    processes.append(serve)
    serve.wait_for_log("watching files")
    (workdir / "inbox" / "quick.csv").write_text("x\n")
    (workdir / "inbox" / "ignored.txt").write_text("not a csv\n")
    write_slowly(workdir / "inbox" / "slow.csv", pieces=8, pause=0.3)  # 2.4 s > settle 0.5 s

    def done() -> bool:
        store = open_store(sqlite_url)
        try:
            runs = [r for r in store.list_flow_runs(limit=100) if r.deployment]
            return len(runs) >= 3 and all(r.state.is_final for r in runs)
        finally:
            store.close()

    wait_until(done, 90, "three runs ended")
    time.sleep(1.5)  # nothing more fires
    store = open_store(sqlite_url)
    try:
        runs = {Path(str(r.parameters["path"])).name: r for r in store.list_flow_runs(limit=100)}
        assert sorted(runs) == ["before.csv", "quick.csv", "slow.csv"]

        def lines(name: str) -> list[str]:
            return [e.message for e in store.logs(runs[name].id) if "lines=" in e.message]

        assert lines("slow.csv") == ["lines=8"]  # it fired once, after its last piece
        assert lines("before.csv") == ["lines=2"]
        assert all(r.origin == "trigger" and r.event_id for r in runs.values())
        why = store.event(runs["slow.csv"].event_id or "")
        assert why is not None and why.run_id == runs["slow.csv"].id
        assert why.event.payload["size"] == (workdir / "inbox" / "slow.csv").stat().st_size
    finally:
        store.close()
    listed = dagflow(["events", "ls", "--json"], workdir, env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.count('"kind": "files"') == 3


def test_a_restart_in_the_middle_of_a_burst_starts_exactly_one_run_per_file(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", sqlite_url)
    args = ["flows.py:ingest", "--on-file", "inbox/*.csv", "--settle", "0.2"]
    first = ServeProcess(args, workdir, env, "first")
    processes.append(first)
    first.wait_for_log("watching files")
    names = [f"f{i:04d}.csv" for i in range(400)]
    stopped = threading.Event()

    def burst() -> None:
        for i, name in enumerate(names):
            if i == len(names) // 2:
                stopped.wait(180)  # the rest arrives while no server runs
            (workdir / "inbox" / name).write_text(f"{name}\n")
            time.sleep(0.01)

    writer = threading.Thread(target=burst)
    writer.start()
    wait_until(lambda: len(runs_by_path(sqlite_url)) >= 20, 60, "the first runs of the burst")
    first.interrupt()  # mid-burst: the writer keeps writing while no server runs
    first.interrupt()
    assert first.wait(120) == 0
    stopped.set()
    writer.join()
    seen_by_first = len(runs_by_path(sqlite_url))
    assert 0 < seen_by_first < len(names), seen_by_first
    second = ServeProcess(args, workdir, env, "second")
    processes.append(second)
    wait_until(lambda: len(runs_by_path(sqlite_url)) >= len(names), 120, "a run per file")
    time.sleep(1.0)
    counts = runs_by_path(sqlite_url)
    assert len(counts) == len(names)
    assert set(counts.values()) == {1}, [p for p, n in counts.items() if n > 1][:5]
