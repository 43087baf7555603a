"""`dagflow serve` as a user runs it: real processes, a real clock (short intervals), real
databases. Runs are counted per tick from the database the services write.

Each test starts one or two `dagflow serve` processes; each of those starts the shared
LocalCluster (worker processes) and one child process per run. All are stopped by pid.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.store import Store, open_store
from dagflow.store.ticks import SKIPPED
from tests.scheduler.serving import ServeProcess, dagflow, environment, wait_until

S = StateType
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FLOWS = """
import time
from dagflow import flow, task, get_run_logger

@task
def add(x: int, y: int) -> int:
    return x + y

@flow
def tick(n: int = 1) -> int:
    get_run_logger().info("body of tick started at %r", time.time())
    return add(n, 1).result()

@task
def nap(seconds: float) -> float:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(0.05)
    return seconds

@flow
def sleepy(seconds: float = 0.1) -> float:
    return nap(seconds).result()
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    return tmp_path


@pytest.fixture
def processes() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for proc in started:
        proc.stop()


def runs_of(store: Store, deployment: str) -> list[FlowRun]:
    return [r for r in store.list_flow_runs(limit=5000) if r.deployment == deployment]


def finished(runs: list[FlowRun]) -> list[FlowRun]:
    return [r for r in runs if r.state.is_final]


def completed(runs: list[FlowRun]) -> list[FlowRun]:
    return [r for r in runs if r.state is S.COMPLETED]


def test_serve_runs_every_tick_and_a_restart_misses_and_repeats_none(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", sqlite_url)
    args = ["flows.py:tick", "--name", "often", "--interval", "2", "--catchup", "-p", "n=4"]
    first = ServeProcess(args, workdir, env, "first")
    processes.append(first)
    first.wait_for_log("ended COMPLETED")
    store = open_store(sqlite_url)
    wait_until(lambda: len(finished(runs_of(store, "tick/often"))) >= 3, 90, "three runs")
    first.interrupt()  # Ctrl-C: no new runs, running ones finish, exit 0
    assert first.wait(60) == 0
    assert "stopping: no new runs" in first.text() and "INFO stopped" in first.text()
    stopped = time.time()
    time.sleep(5)  # down for two ticks or more

    second = ServeProcess(args, workdir, env, "second")
    processes.append(second)

    def after_restart() -> bool:
        runs = finished(runs_of(store, "tick/often"))
        return len([r for r in runs if r.started and r.started > stopped]) >= 5

    wait_until(after_restart, 120, "five runs after the restart")
    second.interrupt()
    assert second.wait(60) == 0

    runs = runs_of(store, "tick/often")
    done = sorted(finished(runs), key=lambda r: r.scheduled_time or 0)
    per_tick = Counter(r.scheduled_time for r in runs)
    assert set(per_tick.values()) == {1}, per_tick  # never twice
    ticks = [r.scheduled_time for r in done]
    assert all(t is not None for t in ticks)
    gaps = {round(b - a, 3) for a, b in itertools.pairwise(ticks)}  # type: ignore[operator]
    assert gaps == {2.0}, ticks  # none missed, downtime included (catchup)
    assert all(r.state is S.COMPLETED for r in done), [(r.id, r.state, r.error) for r in done]
    # every run was claimed by one of the two serve processes and ran on its shared cluster
    served = Counter(r.served_by for r in done)
    assert len(served) == 2
    clusters = {(r.served_by, r.cluster_address) for r in done}
    assert len(clusters) == 2  # one LocalCluster per serve process, shared by its runs
    out = json.loads(dagflow(["runs", "ls", "--json", "--limit", "3"], workdir, env).stdout)
    assert out[0]["deployment"] == "tick/often" and "served_by" in out[0]
    assert "scheduled_time" in out[0] and "late" in out[0]


@pytest.mark.postgres
def test_two_serve_processes_on_one_postgres_database_run_every_tick_once(
    workdir: Path, pg_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", pg_url)
    args = ["flows.py:tick", "--name", "both", "--interval", "1", "--max-active-runs", "4"]
    for name in ("a", "b"):
        processes.append(ServeProcess([*args, "--limit", "3"], workdir, env, name))
    for proc in processes:
        proc.wait_for_log("serving 1 deployment(s)")
    begun = time.time()
    store = open_store(pg_url)

    def enough() -> bool:
        done = [r for r in finished(runs_of(store, "tick/both")) if r.scheduled_time]
        return len([r for r in done if r.scheduled_time > begun + 1]) >= 12  # type: ignore[operator]

    wait_until(enough, 180, "a dozen ticks run")
    for proc in processes:
        proc.interrupt()
    assert [proc.wait(90) for proc in processes] == [0, 0]

    runs = runs_of(store, "tick/both")
    per_tick = Counter(r.scheduled_time for r in runs)
    assert set(per_tick.values()) == {1}, per_tick  # each tick created once
    done = sorted(finished(runs), key=lambda r: r.scheduled_time or 0.0)
    started = [r for r in done if r.started is not None]
    for run in started:  # each run ran once: one RUNNING transition, one task run
        full = store.get_flow_run(run.id)
        assert [h.to_state for h in full.history].count(S.RUNNING) == 1, full.history
        assert len(full.task_runs) == 1
    # No tick is missed: every second has its run. On a loaded machine a tick not started before
    # the next is due is skipped (catchup is off): CANCELLED, saying so, and never started.
    ticks = sorted(r.scheduled_time for r in runs if r.scheduled_time and r.scheduled_time > begun)
    assert {round(b - a, 3) for a, b in itertools.pairwise(ticks)} == {1.0}, ticks
    unstarted = [r for r in done if r.started is None]
    assert all(r.state is S.CANCELLED and r.error == SKIPPED for r in unstarted), unstarted
    assert all(r.state is S.COMPLETED for r in started), [(r.state, r.error) for r in started]
    servers = Counter(r.served_by for r in started)
    print("runs per serve process:", dict(servers))
    assert len(servers) == 2  # both processes ran some


def test_manual_runs_cancel_and_a_second_ctrl_c(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", sqlite_url)
    # a yearly schedule: its next tick is SCHEDULED, far away; the runs here are manual
    args = ["flows.py:sleepy", "--name", "manual", "--cron", "0 0 1 1 *", "--max-active-runs", "3"]
    serve = ServeProcess([*args, "--limit", "3"], workdir, env)
    processes.append(serve)
    serve.wait_for_log("serving 1 deployment(s)")
    store = open_store(sqlite_url)

    # deployments run --wait: created now, picked up by the serve process, followed to its end
    waited = dagflow(
        ["deployments", "run", "sleepy/manual", "-p", "seconds=0.2", "--wait"], workdir, env
    )
    assert waited.returncode == 0, waited.stderr
    assert "COMPLETED" in waited.stdout
    listed = json.loads(dagflow(["deployments", "ls", "--json"], workdir, env).stdout)
    assert listed[0]["name"] == "sleepy/manual" and listed[0]["last_run"]["state"] == "COMPLETED"
    assert listed[0]["next_run"] is not None

    # runs cancel of a SCHEDULED run: at once
    (upcoming,) = [r for r in runs_of(store, "sleepy/manual") if r.state is S.SCHEDULED]
    cancelled = dagflow(["runs", "cancel", upcoming.id[:10]], workdir, env)
    assert cancelled.returncode == 0 and "cancelled" in cancelled.stdout
    assert store.get_flow_run(upcoming.id).state is S.CANCELLED

    # runs cancel of a RUNNING run: its driver (a child of serve) cancels it within seconds
    created = dagflow(["deployments", "run", "sleepy/manual", "-p", "seconds=120"], workdir, env)
    run_id = created.stdout.split()[1]
    wait_until(lambda: store.get_flow_run(run_id).state is S.RUNNING, 90, "the run to start")
    wait_until(lambda: store.get_flow_run(run_id).task_runs, 60, "its task to be submitted")
    asked = time.monotonic()
    requested = dagflow(["runs", "cancel", run_id], workdir, env)
    assert requested.returncode == 0 and "cancel requested" in requested.stdout
    wait_until(lambda: store.get_flow_run(run_id).state is S.CANCELLED, 30, "CANCELLED")
    assert time.monotonic() - asked < 10
    serve.wait_for_log(f"run {run_id[:12]} of sleepy/manual ended CANCELLED")
    again = dagflow(["runs", "cancel", run_id], workdir, env)
    assert again.returncode == 2 and "already ended CANCELLED" in again.stderr

    # Ctrl-C once: the running run goes on; twice: it is cancelled; serve exits 0
    created = dagflow(["deployments", "run", "sleepy/manual", "-p", "seconds=120"], workdir, env)
    long_id = created.stdout.split()[1]
    wait_until(lambda: store.get_flow_run(long_id).state is S.RUNNING, 90, "the long run")
    serve.interrupt()
    serve.wait_for_log("stopping: no new runs; waiting for 1 running run(s)")
    time.sleep(3)
    assert serve.proc.poll() is None
    assert store.get_flow_run(long_id).state is S.RUNNING
    serve.interrupt()
    assert serve.wait(60) == 0
    assert store.get_flow_run(long_id).state is S.CANCELLED
    assert "cancelling 1 running run(s)" in serve.text()


def test_a_deployment_whose_file_breaks_is_skipped_while_the_others_keep_time(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    env = environment(workdir / "home", sqlite_url)
    (workdir / "fine.py").write_text(FLOWS)
    (workdir / "fragile.py").write_text(FLOWS.replace("def tick", "def tack"))
    (workdir / "dagflow.yaml").write_text(
        """
deployments:
  - name: steady
    entrypoint: fine.py:tick
    max_active_runs: 3
    schedules: [{interval: 2}]
  - name: fragile
    entrypoint: fragile.py:tack
    max_active_runs: 3
    schedules: [{interval: 2}]
"""
    )
    serve = ServeProcess(["dagflow.yaml", "--limit", "4"], workdir, env)
    processes.append(serve)
    store = open_store(sqlite_url)
    wait_until(lambda: finished(runs_of(store, "tack/fragile")), 120, "a fragile run")
    (workdir / "fragile.py").write_text("def broken(:\n")
    broke = time.time()
    wait_until(
        lambda: (
            len(
                [
                    r
                    for r in finished(runs_of(store, "tick/steady"))
                    if (r.scheduled_time or 0) > broke + 1
                ]
            )
            >= 4
        ),
        120,
        "steady runs after the break",
    )
    serve.wait_for_log("of tack/fragile not started: deployment tack/fragile: run not started")
    assert serve.proc.poll() is None  # still serving
    serve.interrupt()
    assert serve.wait(60) == 0

    fragile = [
        r for r in finished(runs_of(store, "tack/fragile")) if (r.scheduled_time or 0) > broke + 1
    ]
    assert fragile and all(r.state is S.FAILED for r in fragile)
    assert "cannot load" in (fragile[0].error or "") and "SyntaxError" in (fragile[0].error or "")
    steady = sorted(
        (r for r in finished(runs_of(store, "tick/steady")) if (r.scheduled_time or 0) > broke + 1),
        key=lambda r: r.scheduled_time or 0.0,
    )
    assert all(r.state is S.COMPLETED for r in steady), [
        (r.state, r.error, r.scheduled_time, r.started) for r in steady
    ]
    ticks = [r.scheduled_time or 0.0 for r in steady]
    assert {round(b - a, 3) for a, b in itertools.pairwise(ticks)} == {2.0}
    late = max(r.started - (r.scheduled_time or 0.0) for r in steady if r.started)
    print(f"steady runs started at most {late:.2f}s after their tick")
    assert late < 10


SCRIPT = """
import dagflow
from dagflow import flow

@flow
def py_tick(n: int = 1) -> int:
    return n * 10

# no `if __name__ == "__main__":` guard on purpose: the run's child process imports this file,
# and serve() must not start a second service there
dagflow.serve(py_tick.to_deployment("py", interval=2, parameters={"n": 2}), limit=2)
"""


def test_the_python_api_serves_like_the_cli(
    workdir: Path, sqlite_url: str, processes: list[ServeProcess]
) -> None:
    import signal
    import subprocess
    import sys

    script = workdir / "pyserve.py"
    script.write_text(SCRIPT)
    env = environment(workdir / "home", sqlite_url)
    log = (workdir / "py.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        store = open_store(sqlite_url)
        wait_until(lambda: len(completed(runs_of(store, "py_tick/py"))) >= 2, 120, "two runs")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
    runs = finished(runs_of(store, "py_tick/py"))
    # On a slow machine a 2 s tick may be overtaken by the next one: catchup is off, so it is
    # skipped (CANCELLED, saying so); every other run completed.
    skipped = [r for r in runs if r.state is S.CANCELLED and r.error == SKIPPED]
    assert len(completed(runs)) + len(skipped) == len(runs)
    assert completed(runs)[0].parameters == {"n": 2}
    text = (workdir / "py.log").read_text()
    assert text.count("serving 1 deployment(s)") <= 1  # the library configures no logging...
    assert store.deployment("py_tick/py").entrypoint == f"{script.resolve()}:py_tick"
