"""A real flow on the in-process cluster, recorded by the writer and read back with the read API."""

from __future__ import annotations

import pytest

import dagflow as store_api
from dagflow import StateType, flow, get_run_logger, task
from dagflow.runtime import run_flow
from dagflow.store import StoreWriter, open_store

pytestmark = pytest.mark.cluster
S = StateType


@task
def double(x: int) -> int:
    get_run_logger().info("doubling %d", x)
    return 2 * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@task
def explode(values: list[int]) -> int:
    raise ValueError(f"cannot sum {len(values)} values")


@flow(name="store-e2e")
def pipeline(n: int) -> int:
    return total(double.map(list(range(n)))).result()


@flow(name="store-e2e-fails")
def failing(n: int) -> int:
    return explode(double.map(list(range(n)))).result()


def test_a_flow_run_on_local_threads_is_recorded_and_read_back(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(sqlite_url)
    sink = StoreWriter(store.url)
    try:
        live = run_flow(pipeline, {"n": 4}, cluster="local-threads", sinks=[sink])
        assert live.result() == 12
        failed = run_flow(failing, {"n": 2}, cluster="local-threads", sinks=[sink])
        sink.flush(30)
    finally:
        sink.close(30)

    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    run = store_api.get_flow_run(live.id[:10])
    assert type(run) is type(live)
    assert (run.id, run.flow_name, run.state, run.parameters) == (
        live.id,
        "store-e2e",
        S.COMPLETED,
        {"n": 4},
    )
    assert set(run.task_runs.keys()) == set(live.task_runs.keys())
    for key, task_run in run.task_runs.items():
        assert task_run.state is S.COMPLETED and task_run.attempts == live.task_runs[key].attempts
        assert task_run.started is not None and task_run.ended is not None
    assert [h.to_state for h in run.history] == [h.to_state for h in live.history]
    assert sorted(ev.message for ev in run.logs()) == [f"doubling {i}" for i in range(4)]

    bad = store_api.get_flow_run(failed.id)
    assert bad.state is S.FAILED and bad.error is not None and "cannot sum 2 values" in bad.error
    boom = bad.tasks_named("explode")[0]
    assert boom.state is S.FAILED and boom.error_type == "ValueError"
    assert [r.id for r in store_api.list_flow_runs(flow="store-e2e-fails")] == [failed.id]
    store.close()
