"""`dagflow deployments ...` on a real database (CliRunner, no serve process needed here; the
serve process tests in tests/scheduler run the runs these commands create)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dagflow.cli import main as cli
from dagflow.core.states import StateType
from dagflow.entrypoints import load_flow
from dagflow.scheduler.definitions import build
from dagflow.store import Store, open_store

S = StateType
FLOWS = """
from dagflow import flow

@flow
def report(day: str, rows: int = 10) -> int:
    return rows
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def registered(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[Store, str]:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    path = tmp_path / "reports.py"
    path.write_text(FLOWS)
    flow = load_flow(f"{path}:report")
    dep = build(
        flow,
        "hourly",
        cron="0 * * * *",
        timezone="Europe/Paris",
        parameters={"day": "mon"},
        tags=["x"],
    )
    store = open_store(sqlite_url)
    store.save_deployments([dep])
    return store, dep.full_name


def test_ls_and_show_describe_registered_deployments(registered: tuple[Store, str]) -> None:
    listed = invoke("deployments", "ls")
    assert listed.exit_code == 0
    assert "report/hourly  0 * * * * Europe/Paris  no" in listed.stdout
    [doc] = json.loads(invoke("deployments", "ls", "--json").stdout)
    assert doc["name"] == "report/hourly" and doc["flow"] == "report"
    assert doc["schedules"] == [{"cron": "0 * * * *", "timezone": "Europe/Paris"}]
    assert doc["parameters"] == {"day": "mon"} and doc["tags"] == ["x"]
    assert doc["paused"] is False and doc["max_active_runs"] == 1 and doc["catchup"] is False
    assert doc["next_run"] is None and doc["last_run"] is None
    assert json.loads(invoke("deployments", "show", "hourly", "--json").stdout) == doc


def test_run_creates_a_manual_run_with_validated_overrides(registered: tuple[Store, str]) -> None:
    store, name = registered
    created = invoke("deployments", "run", name, "-p", "rows=5")
    assert created.exit_code == 0
    run_id = created.stdout.split()[1]
    run = store.get_flow_run(run_id)
    assert run.state is S.SCHEDULED and run.origin == "manual"
    assert run.parameters == {"day": "mon", "rows": 5}
    bad = CliRunner().invoke(cli, ["deployments", "run", name, "-p", "rows=many"])
    assert bad.exit_code == 2
    assert "deployment 'report/hourly': parameters: rows:" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def test_backfill_creates_each_past_tick_once(registered: tuple[Store, str]) -> None:
    store, name = registered
    args = ["deployments", "backfill", name, "--start", "2024-03-30T22:00Z"]
    first = invoke(*args, "--end", "2024-03-31T03:00Z")
    assert first.exit_code == 0
    # Paris clocks spring forward that night: 02:00 local does not exist, 01:00 UTC is 03:00
    assert "6 tick(s)" in first.stdout and "6 run(s) created, 0 already" in first.stdout
    again = invoke(*args, "--end", "2024-03-31T04:00Z")
    assert "7 tick(s)" in again.stdout and "1 run(s) created, 6 already recorded" in again.stdout
    runs = [r for r in store.list_flow_runs(limit=100) if r.origin == "backfill"]
    assert len({r.scheduled_time for r in runs}) == len(runs) == 7
    bad = CliRunner().invoke(cli, [*args, "--end", "yesterday"])
    assert bad.exit_code == 2 and "--end: 'yesterday' is not an ISO 8601 time" in bad.output


def test_pause_resume_and_rm(registered: tuple[Store, str]) -> None:
    store, name = registered
    assert invoke("deployments", "pause", name).stdout.strip() == "deployment report/hourly paused"
    assert store.deployment(name).paused
    assert invoke("deployments", "resume", "hourly").exit_code == 0
    assert not store.deployment(name).paused
    invoke("deployments", "run", name)
    assert invoke("deployments", "rm", name).exit_code == 0
    assert invoke("deployments", "ls", "--json").stdout.strip() == "[]"
    assert store.list_flow_runs() == []  # its run that never started went with it
    missing = CliRunner().invoke(cli, ["deployments", "show", "report/hourly"])
    assert missing.exit_code == 2
    assert (
        missing.output.strip()
        == "Error: no deployment 'report/hourly' (see: dagflow deployments ls)"
    )


def test_runs_cancel_of_an_unknown_run_is_one_line(registered: tuple[Store, str]) -> None:
    result = CliRunner().invoke(cli, ["runs", "cancel", "nope"])
    assert result.exit_code == 2 and result.output.strip() == "Error: no flow run with id 'nope'"
