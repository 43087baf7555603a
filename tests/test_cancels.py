"""A run recorded ahead (SCHEDULED) becomes the running run; a cancel request written to the
database by someone else reaches the running driver within about a second (`cancels.py`)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from dagflow import flow, runtime, task
from dagflow.core.deployments import Deployment
from dagflow.core.runs import FlowRun
from dagflow.core.schedules import IntervalSchedule
from dagflow.core.states import StateType
from dagflow.store import NewRun, open_store

S = StateType


@task
def nap(seconds: float) -> float:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
    return seconds


@flow
def napper(seconds: float = 0.1) -> float:
    return nap(seconds).result()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads_cluster: str) -> str:
    url = f"sqlite:///{tmp_path / 'dagflow.db'}"
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", url)
    return url


@pytest.mark.cluster
def test_a_scheduled_run_keeps_its_id_and_history_when_it_runs(db: str) -> None:
    store = runtime.default_store()
    dep = Deployment("d", "napper", f"{__file__}:napper", schedules=(IntervalSchedule(60),))
    store.save_deployments([dep])
    (run_id,) = store.create_runs([NewRun(dep, time.time(), "manual", "manual:1", {})])
    store.claim_due("me", time.time() + 1, 1)
    assert store.take_run(run_id, "me")
    run = runtime.run_flow(napper, {"seconds": 0.1}, run_id=run_id, scheduled=True)
    assert run.id == run_id and run.state is S.COMPLETED
    runtime.close_stores()
    recorded = open_store(db).get_flow_run(run_id)
    assert recorded.state is S.COMPLETED and recorded.deployment == "napper/d"
    assert recorded.parameters == {"seconds": 0.1} and recorded.started is not None
    assert [h.to_state for h in recorded.history] == [
        S.SCHEDULED,
        S.PENDING,
        S.RUNNING,
        S.COMPLETED,
    ]


@pytest.mark.cluster
def test_a_cancel_request_from_elsewhere_cancels_a_running_run_within_seconds(db: str) -> None:
    run_id = uuid.uuid4().hex
    out: dict[str, FlowRun] = {}
    other = open_store(db)  # another connection, as `dagflow runs cancel` in another process
    driver = threading.Thread(
        target=lambda: out.setdefault(
            "run", runtime.run_flow(napper, {"seconds": 60}, run_id=run_id)
        )
    )
    driver.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if other.get_flow_run(run_id).task_runs:
                    break
            except Exception:
                pass
            time.sleep(0.1)
        asked = time.monotonic()
        assert other.request_cancel(run_id) == (run_id, S.CANCELLING)
        driver.join(30)
        took = time.monotonic() - asked
        assert not driver.is_alive()
        assert out["run"].state is S.CANCELLED
        assert took < 5, took  # polled about once a second
        runtime.close_stores()
        recorded = other.get_flow_run(run_id)
        assert recorded.state is S.CANCELLED
        assert any("cancel requested" in h.message for h in recorded.history)
    finally:
        other.close()
