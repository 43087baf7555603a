"""A secret read by a task on a remote worker process that has no database URL, no key and no
dagflow settings at all (real `dask scheduler` / `dask worker` processes): the driver ships it."""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from dagflow import StateType
from tests.clusters.dask_procs import DaskProcesses, load_module

pytestmark = pytest.mark.cluster

FLOW = """
import hashlib, os, sys
import dagflow
from dagflow import flow, get_run_logger, task


@task
def use_it() -> dict:
    value = dagflow.secrets.get("db_password")
    get_run_logger().info("using %s", value)
    return {
        "digest": hashlib.sha256(value.encode()).hexdigest(),
        "settings": sorted(k for k in os.environ if k.startswith("DAGFLOW_")),
        "database_code": sorted(m for m in sys.modules if m.split(".")[0] == "sqlalchemy"),
        "pid": os.getpid(),
    }


@flow(name="remote_secret")
def remote_secret() -> dict:
    return use_it().result()
"""


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path)
    try:
        procs.start_scheduler()
        procs.add_worker()
        procs.wait_for_workers(1)
        yield procs
    finally:
        procs.stop()


def test_a_worker_without_database_or_key_reads_the_secret_the_driver_ships(
    remote: DaskProcesses, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DAGFLOW_SECRET_KEY", Fernet.generate_key().decode())
    from dagflow.runtime import close_stores, default_store, run_flow

    password = "remote-P@ss-" + hashlib.sha1(str(tmp_path).encode()).hexdigest()[:10]
    default_store().set_secret("db_password", password)
    path = tmp_path / "flows" / "remote_secret_flow.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(FLOW))
    module = load_module(path)
    run = run_flow(module.remote_secret, {}, cluster=remote.address)
    assert run.state is StateType.COMPLETED, (run.error, remote.logs())
    found = run.result()
    assert found["digest"] == hashlib.sha256(password.encode()).hexdigest()
    assert found["settings"] == [] and found["database_code"] == []
    close_stores()
    logs = [ev.message for ev in default_store().logs(run.id)]
    assert "using ***" in logs and not any(password in m for m in logs)
    assert password not in remote.logs()
