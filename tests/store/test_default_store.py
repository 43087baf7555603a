"""Runs are recorded in the default store the environment names, on SQLite and on PostgreSQL:
a plain `flow.run()` with DAGFLOW_DATABASE_URL set is read back by the API and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagflow import StateType, flow, get_flow_run, list_flow_runs, task
from dagflow.cli import main

pytestmark = pytest.mark.cluster


@task(retries=1)
def flaky_double(x: int, marker: str) -> int:
    seen = Path(marker)
    if not seen.exists():
        seen.touch()
        raise ConnectionError("first try fails")
    return 2 * x


@flow(name="default-store", cluster="local-threads")
def doubled(x: int, marker: str) -> int:
    return flaky_double(x, marker)


def test_a_plain_run_is_recorded_where_the_environment_says(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", db_url)
    run = doubled.run(x=21, marker=str(tmp_path / "marker"))
    assert run.result() == 42

    recorded = get_flow_run(run.id)
    assert recorded.state is StateType.COMPLETED
    assert recorded.parameters["x"] == 21
    (tr,) = recorded.task_runs.values()
    assert tr.attempts == 2
    assert [t.to_state for t in tr.history] == [
        StateType.PENDING, StateType.RUNNING, StateType.RETRYING, StateType.RUNNING,
        StateType.COMPLETED,
    ]  # fmt: skip
    assert [r.id for r in list_flow_runs(flow="default-store")] == [run.id]

    shown = CliRunner().invoke(main, ["runs", "show", run.id[:8], "--json"])
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.output)
    assert data["state"] == "COMPLETED"
    assert [t["attempts"] for t in data["tasks"]] == [2]
