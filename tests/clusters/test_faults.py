"""Worker and scheduler loss with real processes: SIGKILL, os._exit, a killed scheduler."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from dask_procs import DaskProcesses

from dagflow import flow, task
from dagflow.core.runs import StateEvent
from dagflow.core.states import StateType
from dagflow.runtime import run_flow

S = StateType
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@task
def long_once(marker_dir: str) -> int:
    """The first attempt announces its pid and waits to be killed; a re-run returns at once."""
    import os
    import time
    from pathlib import Path

    marks = Path(marker_dir)
    earlier = list(marks.glob("attempt-*"))
    (marks / f"attempt-{os.getpid()}").write_text("")
    if not earlier:
        time.sleep(120)
    return os.getpid()


@flow(name="survives_worker_loss")
def survives_worker_loss(marker_dir: str) -> int:
    return long_once(marker_dir)


@task(resources={"DOOMED": 1})
def kills_its_worker() -> None:
    import os

    os._exit(1)


@task(resources={"SAFE": 1})
def fine(x: int) -> int:
    return x + 1


@flow(name="one_task_kills_workers")
def one_task_kills_workers() -> list[int]:
    kills_its_worker()
    return [f.result() for f in fine.map([0, 1, 2])]


def run_in_thread(fn: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def target() -> None:
        out["run"] = fn(*args, **kwargs)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out


class Recorder:
    """An event sink that keeps the states it saw."""

    def __init__(self) -> None:
        self.states: list[StateType] = []

    def handle(self, events: Sequence[Any]) -> None:
        self.states.extend(e.to_state for e in events if isinstance(e, StateEvent) and e.task_key)

    def flush(self, timeout: float | None = None) -> None:
        pass


def wait_for(predicate: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)


def test_worker_killed_mid_task_reruns_elsewhere_and_history_shows_crash(
    dask_procs: DaskProcesses, tmp_path: Path
) -> None:
    dask_procs.start_scheduler()
    dask_procs.add_worker(name="w1")
    dask_procs.add_worker(name="w2")
    dask_procs.wait_for_workers(2)
    marks = tmp_path / "marks"
    marks.mkdir()
    seen = Recorder()
    thread, out = run_in_thread(
        run_flow,
        survives_worker_loss,
        {"marker_dir": str(marks)},
        cluster=dask_procs.address,
        sinks=[seen],
    )
    # kill once the driver knows the task runs (a worker that dies before it reports that
    # leaves no trace of the attempt in the driver's events)
    wait_for(lambda: S.RUNNING in seen.states and any(marks.glob("attempt-*")))
    first = int(next(marks.glob("attempt-*")).name.split("-")[1])
    assert first in {p.pid for p in dask_procs.workers}
    os.kill(first, signal.SIGKILL)
    thread.join(120)
    assert not thread.is_alive()
    run = out["run"]
    assert run.state is S.COMPLETED, run.error
    second = run.result()
    assert second != first
    (tr,) = run.task_runs.values()
    states = [t.to_state for t in tr.history]
    assert states == [S.PENDING, S.RUNNING, S.CRASHED, S.RUNNING, S.COMPLETED], tr.history
    crashed = tr.history[2]
    assert "lost" in crashed.message


def test_task_that_kills_every_worker_fails_and_the_rest_finishes(
    dask_procs: DaskProcesses,
) -> None:
    # The killer may only run on the two DOOMED workers, the other tasks only on the SAFE one,
    # so both run at the same time and only the killer's workers die.
    dask_procs.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    dask_procs.add_worker(resources="DOOMED=1")
    dask_procs.add_worker(resources="DOOMED=1")
    dask_procs.add_worker(resources="SAFE=1")
    dask_procs.wait_for_workers(3)
    thread, out = run_in_thread(run_flow, one_task_kills_workers, {}, cluster=dask_procs.address)
    thread.join(180)
    assert not thread.is_alive()
    run = out["run"]
    killer = next(tr for tr in run.task_runs.values() if tr.name == "kills_its_worker")
    fines = [tr for tr in run.task_runs.values() if tr.name == "fine"]
    assert killer.state is S.FAILED, killer.history
    assert "kills_its_worker" in (killer.error or "")
    assert "KilledWorker" in (killer.error or "") or killer.error_type == "KilledWorker"
    assert [tr.state for tr in fines] == [S.COMPLETED] * 3
    assert [p.poll() is not None for p in dask_procs.workers] == [True, True, False]
    assert run.state is S.FAILED
    assert "kills_its_worker" in (run.error or "")


def test_lost_scheduler_ends_the_run_crashed(dask_procs: DaskProcesses, tmp_path: Path) -> None:
    dask_procs.start_scheduler()
    dask_procs.add_worker()
    dask_procs.wait_for_workers(1)
    marks = tmp_path / "marks"
    marks.mkdir()
    thread, out = run_in_thread(
        run_flow, survives_worker_loss, {"marker_dir": str(marks)}, cluster=dask_procs.address
    )
    wait_for(lambda: any(marks.glob("attempt-*")))
    assert dask_procs.scheduler is not None
    dask_procs.scheduler.kill()
    dask_procs.scheduler.wait(30)
    thread.join(120)
    assert not thread.is_alive()
    run = out["run"]
    assert run.state is S.CRASHED, (run.state, run.error)
    assert "scheduler" in (run.error or "").lower()
