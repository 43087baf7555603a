"""Concurrency limits by tag: stored, set from the CLI (N >= 1), and held on a real cluster of
worker processes across three concurrent runs, measured from the recorded start and end times."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagflow import StateType, flow, task
from dagflow.cli import main
from dagflow.core.runs import FlowRun, TaskRun
from dagflow.errors import NotFound, UsageError
from dagflow.store import Store

S = StateType


def test_limits_are_stored_and_bad_ones_refused(store: Store) -> None:
    store.set_concurrency_limit("db", 2)
    store.set_concurrency_limit("api", 5)
    store.set_concurrency_limit("db", 3)
    assert [(c.tag, c.slots) for c in store.concurrency_limits()] == [("api", 5), ("db", 3)]
    assert store.run_config().limits == {"api": 5, "db": 3}
    assert store.run_config().limits_of(["db", "other", "api"]) == (("api", 5), ("db", 3))
    for bad in (0, -1, True, 2.5):
        with pytest.raises(UsageError, match="must be a whole number from 1"):
            store.set_concurrency_limit("db", bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="invalid tag name"):
        store.set_concurrency_limit("two words", 1)
    store.remove_concurrency_limit("api")
    with pytest.raises(NotFound, match="no concurrency limit on tag 'api'"):
        store.remove_concurrency_limit("api")


def test_the_commands(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    cli = CliRunner()
    assert "no concurrency limits" in cli.invoke(main, ["concurrency", "ls"]).output
    done = cli.invoke(main, ["concurrency", "set", "db", "2"])
    assert done.exit_code == 0 and done.output == "tag db: at most 2 task runs at once\n"
    assert "db" in cli.invoke(main, ["concurrency", "ls"]).output
    for bad in ("0", "-3", "many"):
        refused = cli.invoke(main, ["concurrency", "set", "db", bad])
        assert refused.exit_code == 2, refused.output
        assert "must be a whole number" in refused.output and bad in refused.output
    assert cli.invoke(main, ["concurrency", "rm", "db"]).output == "tag db: no limit\n"
    gone = cli.invoke(main, ["concurrency", "rm", "db"])
    assert gone.exit_code == 2 and "no concurrency limit on tag 'db'" in gone.output


# ---------------------------------------------------------------------------- on a cluster


@task(tags=["db"])
def query(i: int) -> int:
    time.sleep(0.4)
    return i


@task
def free(i: int) -> int:
    time.sleep(0.1)
    return i


@flow
def reports(n: int) -> int:
    loads = query.map(range(n))
    others = free.map(range(n))
    return sum(f.result() for f in loads) + sum(f.result() for f in others)


@pytest.fixture(scope="module")
def processes_cluster() -> Iterator[str]:
    """Two worker processes with three threads each: up to six tasks at once."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=3,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


def most_at_once(tasks: list[TaskRun]) -> int:
    edges = []
    for tr in tasks:
        assert tr.started is not None and tr.ended is not None, tr
        edges += [(tr.started, 1), (tr.ended, -1)]
    running = peak = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same instant
        running += step
        peak = max(peak, running)
    return peak


def run_concurrently(address: str, count: int, n: int) -> list[FlowRun]:
    from dagflow.runtime import run_flow

    runs: list[FlowRun] = []
    threads = [
        threading.Thread(target=lambda: runs.append(run_flow(reports, {"n": n}, cluster=address)))
        for _ in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return runs


@pytest.mark.cluster
def test_db_tasks_never_run_more_than_two_at_once_across_three_runs(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, processes_cluster: str
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    from dagflow.runtime import close_stores, default_store

    # Without a limit the cluster runs more than two at once (so the check below can fail).
    unlimited = run_concurrently(processes_cluster, 3, 4)
    assert [r.state for r in unlimited] == [S.COMPLETED] * 3
    peak = most_at_once([t for r in unlimited for t in r.tasks_named("query")])
    assert peak > 2, f"without a limit, only {peak} at once"

    default_store().set_concurrency_limit("db", 2)
    limited = run_concurrently(processes_cluster, 3, 4)
    close_stores()
    assert [r.state for r in limited] == [S.COMPLETED] * 3
    store = default_store()
    recorded = [store.get_flow_run(r.id) for r in limited]
    queries = [t for r in recorded for t in r.tasks_named("query")]
    assert len(queries) == 12
    spans = sorted((t.started, t.ended, t.key) for t in queries)
    assert most_at_once(queries) == 2, spans
    waited = [
        step.message
        for t in queries
        for step in t.history
        if step.to_state is S.PENDING and step.message
    ]
    assert waited, "some db task waited for a slot, PENDING with a message"
    assert "waiting for a concurrency slot of tag 'db' (at most 2 task runs at once)" in waited


# ---------------------------------------------------------------------------- a dead worker's slot

DYING_FLOW = """
import os, time
from pathlib import Path
from dagflow import flow, task


@task(tags=["db"])
def hog(marker: str) -> str:
    if not Path(marker).exists():
        Path(marker).write_text(str(time.time()))
        os._exit(1)  # the worker dies holding the only slot of tag db
    return "done"


@flow(name="dying_holder", timeout=120)
def dying_holder(marker: str) -> str:
    return hog(marker).result()
"""


@pytest.mark.slow
def test_a_slot_held_by_a_dead_worker_comes_back(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import textwrap

    from tests.clusters.dask_procs import DaskProcesses, load_module

    # Leases expire after 3 s here (30 s by default), checked every second.
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_TIMEOUT", "3s")
    monkeypatch.setenv("DASK_DISTRIBUTED__SCHEDULER__LOCKS__LEASE_VALIDATION_INTERVAL", "1s")
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    from dagflow.runtime import default_store, run_flow

    default_store().set_concurrency_limit("db", 1)
    path = tmp_path / "flows" / "dying_holder_flow.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(DYING_FLOW))
    module = load_module(path)
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_scheduler()
        procs.add_worker()
        procs.add_worker()
        procs.wait_for_workers(2)
        marker = tmp_path / "died"
        run = run_flow(module.dying_holder, {"marker": str(marker)}, cluster=procs.address)
    finally:
        procs.stop()
    assert run.state is S.COMPLETED, (run.error, procs.logs())
    (hog,) = run.tasks_named("hog")
    states = [t.to_state for t in hog.history]
    assert S.CRASHED in states  # the attempt lost with its worker
    died = float(marker.read_text())
    rerun = max(t.time for t in hog.history if t.to_state is S.RUNNING)
    assert rerun - died >= 2.0, hog.history  # the re-run waited for the dead worker's lease
