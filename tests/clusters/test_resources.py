"""Resources and priority on real workers: GPU tasks go only to the GPU worker, or fail fast."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dask_procs import DaskProcesses
from distributed import Client

from dagflow import ClusterError, flow, task, unmapped
from dagflow.core.states import StateType
from dagflow.engine.submission import missing_resources
from dagflow.runtime import run_flow

pytestmark = pytest.mark.cluster


@task(resources={"GPU": 1})
def on_gpu(i: int) -> str:
    from distributed import get_worker

    return str(get_worker().name)


@task
def anywhere(i: int) -> str:
    from distributed import get_worker

    return str(get_worker().name)


@flow(name="gpu_and_cpu")
def gpu_and_cpu(n: int = 4) -> dict[str, list[str]]:
    return {"gpu": on_gpu.map(list(range(n))), "cpu": anywhere.map(list(range(n)))}


@task(resources={"TPU": 1})
def on_tpu() -> int:
    return 1


@flow(name="needs_tpu")
def needs_tpu() -> int:
    return on_tpu()


@pytest.fixture(scope="module")
def gpu_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    from dagflow import clusters

    procs = DaskProcesses(tmp_path_factory.mktemp("gpu"))
    try:
        procs.start_scheduler()
        procs.add_worker(name="gpu-worker", resources="GPU=1")
        procs.add_worker(name="cpu-worker")
        procs.wait_for_workers(2)
        yield procs
    finally:
        clusters.close_all()
        procs.stop()


def test_missing_resources_reads_the_workers(gpu_cluster: DaskProcesses) -> None:
    with Client(gpu_cluster.address, timeout="30s") as client:
        assert missing_resources(client, {"GPU": 1}) == []
        assert missing_resources(client, {}) == []
        assert missing_resources(client, {"GPU": 2}) == ["GPU"]
        assert missing_resources(client, {"GPU": 1, "TPU": 1, "FPGA": 0.5}) == ["TPU", "FPGA"]


def test_gpu_tasks_run_only_on_the_worker_that_declares_gpu(gpu_cluster: DaskProcesses) -> None:
    run = run_flow(gpu_and_cpu, {"n": 6}, cluster=gpu_cluster.address)
    assert run.state is StateType.COMPLETED, run.error
    value = run.result()
    assert value["gpu"] == ["gpu-worker"] * 6
    assert len(value["cpu"]) == 6


def test_missing_resource_fails_at_submission_naming_task_and_resource(
    gpu_cluster: DaskProcesses,
) -> None:
    out: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: out.setdefault("run", run_flow(needs_tpu, {}, cluster=gpu_cluster.address)),
        daemon=True,
    )
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the run waited for a resource no worker has"
    run = out["run"]
    assert run.state is StateType.FAILED  # type: ignore[attr-defined]
    error = run.error or ""  # type: ignore[attr-defined]
    assert "on_tpu" in error and "TPU" in error
    with pytest.raises(ClusterError, match="TPU"):
        run.result()  # type: ignore[attr-defined]


@task(priority=10, resources={"GPU": 1})
def urgent(i: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"urgent {i}\n")
    return i


@task(priority=-10, resources={"GPU": 1})
def later(i: int, log: str) -> int:
    with open(log, "a") as f:
        f.write(f"later {i}\n")
    return i


@flow(name="prioritised")
def prioritised(log: str) -> int:
    lows = later.map(list(range(5)), log=unmapped(log))
    highs = urgent.map(list(range(5)), log=unmapped(log))
    return len(lows) + len(highs)


def test_priority_orders_ready_tasks(gpu_cluster: DaskProcesses, tmp_path: Path) -> None:
    # one GPU on one single-threaded worker: the tasks run one by one, in priority order
    log = tmp_path / "order.log"
    run = run_flow(prioritised, {"log": str(log)}, cluster=gpu_cluster.address)
    assert run.state is StateType.COMPLETED, run.error
    order = [line.split()[0] for line in log.read_text().splitlines()]
    assert len(order) == 10
    # at most the first task started before the scheduler saw the whole wave
    assert order[1:6] == ["urgent"] * 5 or order[:5] == ["urgent"] * 5, order
