"""The same engine on worker processes (the default `local` cluster): pickling, logs, retries."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagflow import StateType, flow, get_run_logger, task, unmapped
from dagflow.clusters import get_cluster

pytestmark = pytest.mark.cluster
S = StateType


@task(retries=1, log_prints=True)
def where(i: int, marker_dir: str) -> int:
    marker = Path(marker_dir) / f"tried-{i}"
    get_run_logger().info("item %d in pid %d", i, os.getpid())
    if not marker.exists():
        marker.touch()
        print(f"first attempt of {i} fails")
        raise ConnectionError("transient")
    return os.getpid()


@task
def distinct(pids: list[int]) -> int:
    return len(set(pids))


@flow(cluster="local")
def spread(n: int, marker_dir: str) -> int:
    return distinct(where.map(range(n), marker_dir=unmapped(marker_dir)))


def test_flow_runs_on_worker_processes(tmp_path: Path) -> None:
    run = spread.run(n=6, marker_dir=str(tmp_path))
    assert run.state is S.COMPLETED, run.error
    assert run.result() >= 1
    handle = get_cluster("local")
    assert handle.cluster is not None
    assert handle.dashboard_link is not None
    assert handle.dashboard_link.startswith("http://127.0.0.1:")
    assert run.dashboard_link == handle.dashboard_link
    for tr in run.tasks_named("where"):
        assert tr.state is S.COMPLETED
        assert tr.attempts == 2
        assert tr.worker is not None
        assert tr.worker.startswith("tcp://127.0.0.1:")
    messages = [rec.message for rec in run.logs() if rec.task_name == "where"]
    assert any(m.startswith("item 0 in pid ") for m in messages)
    assert "first attempt of 3 fails" in messages
    pids = {int(m.rsplit(" ", 1)[1]) for m in messages if m.startswith("item ")}
    assert os.getpid() not in pids, "tasks must run in worker processes"


def test_the_local_cluster_is_started_once_per_process(tmp_path: Path) -> None:
    first = get_cluster("local")
    spread.run(n=1, marker_dir=str(tmp_path))
    assert get_cluster("local") is first
