"""`examples/etl.py` works as the README promises: from Python and through the `dagflow` CLI."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dagflow import StateType
from dagflow.testing import local_flows

pytestmark = pytest.mark.cluster

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "etl.py"


def expected_rows(rows: int) -> int:
    """The example writes every 97th order without an amount; those are rejected."""
    return sum(1 for i in range(rows) if i % 97 != 0)


@pytest.fixture(scope="module")
def etl_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dagflow_example_etl", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def count_orders(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        (n,) = conn.execute("SELECT count(*) FROM orders").fetchone()
    conn.close()
    return int(n)


def test_the_etl_flow_loads_every_valid_row(etl_module: ModuleType, tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    with local_flows(tmp_path / "home"):
        run = etl_module.etl.run(rows="200", data_dir=str(tmp_path / "data"), db_path=str(db))
    assert run.state is StateType.COMPLETED, run.error
    assert run.parameters["rows"] == 200  # the string was coerced
    assert run.result() == expected_rows(200) == 197
    assert count_orders(db) == 197

    # one task per region file, all completed
    assert len(run.tasks_named("extract")) == 4
    assert {tr.state for tr in run.task_runs.values()} == {StateType.COMPLETED}

    # the flaky read failed once, then its retry succeeded
    (rates,) = run.tasks_named("read_rates")
    assert rates.attempts == 2
    states = [str(t.to_state) for t in rates.history]
    assert states == ["PENDING", "RUNNING", "RETRYING", "RUNNING", "COMPLETED"]
    assert "still being written" in rates.history[2].message

    messages = [(log.task_name, log.message) for log in run.logs()]
    assert ("read_rates", "rates file is locked; the task will retry") in messages
    assert ("load", f"loaded 197 rows into {db}") in messages
    assert (None, "done: 197 rows loaded") in messages  # the flow body's own record


def test_a_batch_that_fails_validation_is_quarantined(
    etl_module: ModuleType, tmp_path: Path
) -> None:
    db, data = tmp_path / "orders.db", tmp_path / "data"
    with local_flows(tmp_path / "home"):
        run = etl_module.etl.run(rows=100, max_rejected=0.0, data_dir=str(data), db_path=str(db))
    assert run.state is StateType.COMPLETED, run.error
    assert run.result() == 0
    assert not db.exists()
    assert run.tasks_named("load") == []
    lines = (data / "quarantine.csv").read_text().splitlines()
    assert len(lines) == 1 + expected_rows(100)


def test_files_default_to_dagflow_home(etl_module: ModuleType, tmp_path: Path) -> None:
    with local_flows(tmp_path) as home:
        assert etl_module.etl(rows=100) == expected_rows(100)
    assert count_orders(home / "examples" / "etl" / "orders.db") == expected_rows(100)


def _dagflow_command() -> list[str]:
    script = Path(sys.executable).parent / "dagflow"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from dagflow.cli import main; sys.exit(main())"]


@pytest.mark.slow
def test_the_readme_command_runs_the_example(tmp_path: Path) -> None:
    db = tmp_path / "orders.db"
    env = {**os.environ, "DAGFLOW_HOME": str(tmp_path / "home")}
    env.pop("DAGFLOW_DATABASE_URL", None)
    command = [
        *_dagflow_command(),
        "run",
        f"{EXAMPLE}:etl",
        "--param",
        "rows=100",
        "--param",
        f"db_path={db}",
        "--param",
        f"data_dir={tmp_path / 'data'}",
        "--cluster",
        "local-threads",
    ]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, err
    assert "COMPLETED" in out
    assert f"result: {expected_rows(100)}" in out
    assert "rates file is locked; the task will retry" in out + err
    assert count_orders(db) == expected_rows(100)


@pytest.mark.slow
def test_python_examples_etl_prints_the_run_id_and_the_result(tmp_path: Path) -> None:
    """`python examples/etl.py` on the default `local` cluster (worker processes, which import
    the file again): it prints the run and its result, and only that one run is recorded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env["DAGFLOW_HOME"] = str(tmp_path / "home")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.strip().splitlines()
    assert re.fullmatch(r"run [0-9a-f]{32} COMPLETED", first), first
    assert second == f"rows loaded: {expected_rows(1000)}"
    with sqlite3.connect(tmp_path / "home" / "dagflow.db") as db:
        ids = [row[0] for row in db.execute("SELECT id FROM flow_runs")]
    db.close()
    assert ids == [first.split()[1]]


SCHEDULED = Path(__file__).resolve().parents[1] / "examples" / "dagflow.yaml"


def test_the_example_deployments_load_and_check() -> None:
    from dagflow.scheduler.definitions import load_yaml

    loaded = load_yaml(SCHEDULED)
    names = [dep.full_name for dep, _ in loaded]
    assert names == ["report/every-minute", "cleanup/nightly"]
    nightly = loaded[1][0]
    assert nightly.schedules[0].spec() == {"cron": "30 2 * * *", "timezone": "Europe/Paris"}
    assert loaded[0][1].validate_parameters(loaded[0][0].parameters)["size"] == 20
