"""Work lost with a worker is recorded: an attempt killed as it starts, results computed again.

Real `dask scheduler` / `dask worker` processes on 127.0.0.1, killed with SIGKILL or by the task
itself (`os._exit`); the history must say what happened to each task, and side effects that
happened twice must show as two attempts.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from dask_procs import DaskProcesses

from dagflow import flow, task
from dagflow.core.states import StateType
from dagflow.runtime import run_flow

S = StateType
pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@task
def dies_first(marker_dir: str) -> int:
    """The first attempt kills its worker before it can say anything; the next one returns."""
    import os
    from pathlib import Path

    marker = Path(marker_dir) / "died"
    if not marker.exists():
        marker.touch()
        os._exit(1)
    return os.getpid()


@flow(name="dies_as_it_starts")
def dies_as_it_starts(marker_dir: str) -> int:
    return dies_first(marker_dir).result()


def test_a_task_killed_as_it_starts_leaves_a_crashed_attempt(
    dask_procs: DaskProcesses, tmp_path: Path
) -> None:
    dask_procs.start_scheduler()
    for name in ("w1", "w2", "w3"):
        dask_procs.add_worker(name=name)
    dask_procs.wait_for_workers(3)
    for round_ in range(2):  # it used to be recorded only about half of the time
        marks = tmp_path / f"marks-{round_}"
        marks.mkdir()
        run = run_flow(dies_as_it_starts, {"marker_dir": str(marks)}, cluster=dask_procs.address)
        assert run.state is S.COMPLETED, run.error
        (tr,) = run.task_runs
        states = [step.to_state for step in tr.history]
        assert states[0] is S.PENDING and S.CRASHED in states, tr.history
        assert states[-2:] == [S.RUNNING, S.COMPLETED], tr.history
        crashed = next(step for step in tr.history if step.to_state is S.CRASHED)
        assert "lost" in crashed.message
        assert tr.attempts == 2  # the lost attempt counts


def _journal(path: str, entry: str) -> None:
    with open(path, "a") as fh:
        fh.write(entry + "\n")


@task
def square(i: int, journal: str) -> int:
    _journal(journal, f"square {i}")
    return i * i


@task(persist_result=True)
def square_kept(i: int, journal: str) -> int:
    _journal(journal, f"square {i}")
    return i * i


@task
def total(values: list[int]) -> int:
    return sum(values)


def _pause(signals: str) -> None:
    Path(signals, "ready").touch()
    deadline = time.monotonic() + 120
    while not Path(signals, "go").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)


@flow(name="loses_results")
def loses_results(n: int, journal: str, signals: str) -> int:
    parts = square.map(range(n), journal=[journal] * n)
    for part in parts:
        part.wait()
    _pause(signals)  # the test kills the worker holding most results now
    return total(parts).result()


@flow(name="loses_kept_results")
def loses_kept_results(n: int, journal: str, signals: str) -> int:
    parts = square_kept.map(range(n), journal=[journal] * n)
    for part in parts:
        part.wait()
    _pause(signals)
    return total(parts).result()


def _kill_busiest_worker(dask_procs: DaskProcesses) -> None:
    from distributed import Client

    with Client(dask_procs.address, timeout="30s") as client:
        pids = client.run(os.getpid)
        held = client.run_on_scheduler(
            lambda dask_scheduler: {
                w.address: len(w.has_what) for w in dask_scheduler.workers.values()
            }
        )
    busiest = max(held, key=lambda address: held[address])
    os.kill(pids[busiest], signal.SIGKILL)


def _run_losing(dask_procs: DaskProcesses, tmp_path: Path, which: Any) -> tuple[Any, Counter[str]]:
    dask_procs.start_scheduler()
    dask_procs.add_worker(name="w1")
    dask_procs.add_worker(name="w2")
    dask_procs.wait_for_workers(2)
    journal = tmp_path / "journal.txt"
    journal.touch()
    signals = tmp_path / "signals"
    signals.mkdir()
    out: dict[str, Any] = {}
    params = {"n": 20, "journal": str(journal), "signals": str(signals)}
    thread = threading.Thread(
        target=lambda: out.update(run=run_flow(which, params, cluster=dask_procs.address)),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 120
    while not (signals / "ready").exists():
        assert time.monotonic() < deadline and thread.is_alive()
        time.sleep(0.05)
    _kill_busiest_worker(dask_procs)
    time.sleep(1.0)  # let the scheduler notice
    (signals / "go").touch()
    thread.join(180)
    assert not thread.is_alive()
    return out["run"], Counter(journal.read_text().splitlines())


def test_results_lost_with_a_worker_are_recorded_as_new_attempts(
    dask_procs: DaskProcesses, tmp_path: Path
) -> None:
    run, ran = _run_losing(dask_procs, tmp_path, loses_results)
    assert run.state is S.COMPLETED, run.error
    assert run.result() == sum(i * i for i in range(20))
    twice = {entry for entry, n in ran.items() if n == 2}
    assert twice, "the killed worker held results that had to be computed again"
    recomputed = set()
    for tr in run.task_runs:
        if tr.name != "square":
            continue
        lost = [s for s in tr.history if "lost with worker" in s.message]
        if lost:
            recomputed.add(f"square {tr.map_index}")
            assert lost[0].to_state is S.PENDING and tr.state is S.COMPLETED
            assert tr.attempts == 2  # the computation done again is an attempt of its own
    assert recomputed == twice  # every side effect that happened twice is in the history


def test_results_lost_with_a_worker_are_reloaded_when_persisted(
    dask_procs: DaskProcesses, tmp_path: Path
) -> None:
    run, ran = _run_losing(dask_procs, tmp_path, loses_kept_results)
    assert run.state is S.COMPLETED, run.error
    assert run.result() == sum(i * i for i in range(20))
    assert set(ran.values()) == {1}, "persisted results are reloaded, not computed again"
    reloaded = [
        tr for tr in run.task_runs if any("reloaded from storage" in s.message for s in tr.history)
    ]
    assert reloaded
    assert all(tr.state is S.CACHED for tr in reloaded)
