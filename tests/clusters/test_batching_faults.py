"""Faults inside chunks of `.map` items (issue #15), on real `dask scheduler` / `dask worker`
processes: a worker killed while a chunk runs, a poison item that kills every worker it runs on.

Tasks write a journal, so a test sees what ran (and what ran twice) apart from what the run's
record says.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dask_procs import DaskProcesses

from dagflow import flow, get_flow_run, task, unmapped
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.engine.tracker import RunTracker
from dagflow.runtime import run_flow

S = StateType
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def _journal(path: str, entry: str) -> None:
    with open(path, "a") as fh:
        fh.write(entry + "\n")


@task(batch_size=10)
def step(i: int, journal: str, marks: str) -> int:
    import time

    _journal(journal, f"start {i}")
    died = Path(marks) / "died"
    if i == 15 and not died.exists():
        died.touch()
        time.sleep(0.5)  # running, and known to be: its RUNNING report has left the worker
        os._exit(1)
    time.sleep(0.05)
    _journal(journal, f"done {i}")
    return i


@flow(name="chunk_loses_worker")
def chunk_loses_worker(n: int, journal: str, marks: str) -> list[int]:
    return step.map(range(n), journal=unmapped(journal), marks=unmapped(marks))


def test_a_worker_killed_mid_chunk(dask_procs: DaskProcesses, tmp_path: Path) -> None:
    dask_procs.start_scheduler()
    for name in ("w1", "w2", "w3"):
        dask_procs.add_worker(name=name)
    dask_procs.wait_for_workers(3)
    journal = tmp_path / "journal.txt"
    journal.touch()
    params = {"n": 40, "journal": str(journal), "marks": str(tmp_path)}
    run = run_flow(chunk_loses_worker, params, cluster=dask_procs.address)
    assert run.state is S.COMPLETED, run.error
    assert run.result() == list(range(40))

    lost = run.task_runs["step[15]"]
    states = [t.to_state for t in lost.history]
    assert states == [S.PENDING, S.RUNNING, S.CRASHED, S.RUNNING, S.COMPLETED], lost.history
    assert lost.attempts == 2
    assert "lost" in lost.history[2].message

    ran = Counter(journal.read_text().splitlines())
    assert ran["start 15"] == 2
    rerun = [i for i in range(10, 15) if ran[f"done {i}"] == 2]
    assert rerun, "the chunk ran again from its start on another worker"
    recorded = get_flow_run(run.id)
    for i in (*rerun, 16, 19):
        for record in (run, recorded):
            tr = record.task_runs[f"step[{i}]"]
            assert [t.to_state for t in tr.history] == [S.PENDING, S.RUNNING, S.COMPLETED], (
                i,
                tr.history,
            )
    assert recorded.task_runs["step[15]"].attempts == 2


@task(batch_size=8)
def poisoned(i: int) -> int:
    if i == 3:
        os._exit(1)  # every worker that runs it dies
    return i


@flow(name="poison_in_chunk")
def poison_in_chunk(journal: str) -> None:
    futures = poisoned.map(range(16))
    # the body reads its neighbours' values (each from its chunk), not the poison's
    _journal(journal, repr([f.result() for i, f in enumerate(futures) if i != 3]))


def _poison_run(dask_procs: DaskProcesses, journal: Path) -> FlowRun:
    # Workers under a nanny come back after each death; one allowed failure per task.
    dask_procs.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    for name in ("w1", "w2"):
        dask_procs.add_worker(name=name, nanny=True)
    dask_procs.wait_for_workers(2)
    run = run_flow(poison_in_chunk, {"journal": str(journal)}, cluster=dask_procs.address)
    assert journal.read_text() == repr([i for i in range(16) if i != 3]) + "\n"
    assert run.state is S.FAILED
    poison = run.task_runs["poisoned[3]"]
    assert poison.state is S.FAILED
    assert poison.error_type == "KilledWorker"
    assert "poisoned" in (run.error or "")
    recorded = get_flow_run(run.id)
    for record in (run, recorded):
        # Every other item completed: the poison's neighbours in its chunk ran again without
        # it (`engine/chunk_guard.py`), and the other chunk, when its result was lost with a
        # worker the poison killed, was computed again and waited for.
        others = {i: record.task_runs[f"poisoned[{i}]"].state for i in range(16) if i != 3}
        assert set(others.values()) == {S.COMPLETED}, others
        assert record.task_runs["poisoned[3]"].state is S.FAILED
    return run


def test_a_poison_item_ends_failed_with_killed_worker(
    dask_procs: DaskProcesses, tmp_path: Path
) -> None:
    run = _poison_run(dask_procs, tmp_path / "journal")
    poison = run.task_runs["poisoned[3]"]
    assert "died while running it" in (poison.error or ""), poison.error


def test_a_lost_result_heard_late_is_still_waited_for(
    dask_procs: DaskProcesses, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The scheduler's word that a worker was lost, with the other chunk's result (Dask computes
    it again), comes with the poison's KilledWorker; on a loaded machine the driver folded it
    after the run's end, and that chunk's items ended PENDING. Here that word is always late."""
    change = RunTracker.change

    def late_losses(self: RunTracker, stimulus: Any) -> Any:
        if "on_worker_lost" in getattr(stimulus, "__qualname__", ""):
            time.sleep(1.0)  # the pump is slow, the flow's thread is not
        return change(self, stimulus)

    monkeypatch.setattr(RunTracker, "change", late_losses)
    run = _poison_run(dask_procs, tmp_path / "journal")
    for i in range(8, 16):  # computed again or not, the record's end is the chunk's
        assert run.task_runs[f"poisoned[{i}]"].history[-1].to_state is S.COMPLETED


@task(batch_size=8)
def first_stage(i: int) -> int:
    return i


@task(batch_size=8)
def poisoned_second(i: int) -> int:
    if i == 5:
        os._exit(1)  # every worker that runs it dies
    return i * 10


@flow(name="poison_in_fused_stage")
def poison_in_fused_stage(journal: str) -> None:
    seconds = poisoned_second.map(first_stage.map(range(16)))  # fused: one chunk runs both
    _journal(journal, repr([f.result() for i, f in enumerate(seconds) if i != 5]))


def test_a_poison_item_of_a_fused_stage_fails_alone(
    dask_procs: DaskProcesses, tmp_path: Path
) -> None:
    dask_procs.start_scheduler(env={"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"})
    for name in ("w1", "w2"):
        dask_procs.add_worker(name=name, nanny=True)
    dask_procs.wait_for_workers(2)
    journal = tmp_path / "journal"
    run = run_flow(poison_in_fused_stage, {"journal": str(journal)}, cluster=dask_procs.address)
    assert run.state is S.FAILED
    assert journal.read_text() == repr([i * 10 for i in range(16) if i != 5]) + "\n"
    assert any("fused with 'poisoned_second'" in ev.message for ev in run.log_records)
    for record in (run, get_flow_run(run.id)):
        poison = record.task_runs["poisoned_second[5]"]
        assert poison.state is S.FAILED and poison.error_type == "KilledWorker", poison.error
        # the death is the second stage's: item 5 of the first stage completed
        assert {tr.state for tr in record.tasks_named("first_stage")} == {S.COMPLETED}
        others = {tr.key: tr.state for tr in record.tasks_named("poisoned_second")}
        del others["poisoned_second[5]"]
        assert set(others.values()) == {S.COMPLETED}, others
