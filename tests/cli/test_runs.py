"""`dagflow runs`, `dagflow logs` and `dagflow db` through click's CliRunner on a real database."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from dagflow.cli import main as cli
from dagflow.core.states import StateType
from dagflow.store import StoreWriter, open_store
from dagflow.store.database import head_revision
from dagflow.store.schema import VERSION_TABLE
from tests.store.conftest import new_id, run_events

S = StateType


@pytest.fixture
def env(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    return sqlite_url


@pytest.fixture
def runs(env: str) -> list[str]:
    store = open_store(env)
    writer = StoreWriter(store.url)
    ids = ["feed" + new_id()[4:], "fade" + new_id()[4:]]
    writer.handle(run_events(ids[0], 3, flow="etl"))
    writer.handle(run_events(ids[1], 2, flow="report", final=S.FAILED, t0=2e9))
    writer.close(30)
    store.close()
    return ids


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_runs_ls_shows_a_table_and_documented_json(runs: list[str]) -> None:
    result = invoke("runs", "ls")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "FLOW" in lines[0] and "STATE" in lines[0]
    assert runs[1][:12] in lines[1] and "FAILED" in lines[1] and "report" in lines[1]
    assert runs[0][:12] in lines[2] and "COMPLETED" in lines[2] and "3/3" in lines[2]

    data = json.loads(invoke("runs", "ls", "--json").stdout)
    assert [d["id"] for d in data] == [runs[1], runs[0]]
    assert set(data[0]) == {
        "id",
        "flow",
        "flow_version",
        "state",
        "parameters",
        "attempts",
        "started",
        "ended",
        "duration",
        "error_type",
        "error",
        "parent_run_id",
        "cluster_address",
        "dashboard_link",
        "entrypoint",
        "deployment",
        "scheduled_time",
        "origin",
        "served_by",
        "late",
        "task_counts",
    }
    assert data[0]["deployment"] is None and data[0]["late"] is False
    assert data[1]["task_counts"] == {"COMPLETED": 3}
    assert data[1]["started"].endswith("+00:00") and data[1]["parameters"] == {"n": 3}
    assert data[0]["error"] == "it broke"

    only = json.loads(invoke("runs", "ls", "--flow", "etl", "--json").stdout)
    assert [d["id"] for d in only] == [runs[0]]
    failed = json.loads(invoke("runs", "ls", "--state", "failed", "--json").stdout)
    assert [d["id"] for d in failed] == [runs[1]]
    assert json.loads(invoke("runs", "ls", "--limit", "1", "--json").stdout)[0]["id"] == runs[1]


def test_runs_show_prints_the_task_table_and_json(runs: list[str]) -> None:
    result = invoke("runs", "show", runs[0][:6])
    assert result.exit_code == 0
    assert runs[0] in result.stdout and "COMPLETED" in result.stdout
    assert "ATTEMPTS" in result.stdout and "DURATION" in result.stdout
    assert result.stdout.count("work-") == 3

    data = json.loads(invoke("runs", "show", runs[0], "--json").stdout)
    assert data["id"] == runs[0] and len(data["tasks"]) == 3
    assert set(data["tasks"][0]) == {
        "key",
        "name",
        "map_index",
        "state",
        "attempts",
        "started",
        "ended",
        "duration",
        "worker",
        "error_type",
        "error",
        "result_location",
        "result_size",
        "result_serializer",
        "cache_key",
    }
    assert [h["to"] for h in data["history"]] == ["PENDING", "RUNNING", "COMPLETED"]


def test_unknown_and_ambiguous_run_ids_are_one_line_exit_2(runs: list[str]) -> None:
    for args, message in [
        (("runs", "show", "0123"), "no flow run with id '0123'"),
        (("runs", "show", "f"), "run id 'f' is ambiguous"),
        (("logs", "nothing"), "no flow run with id 'nothing'"),
    ]:
        result = invoke(*args)
        assert result.exit_code == 2
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
        assert message in result.stderr


def test_logs_prints_records_filters_by_task_and_follow_ends_with_the_run(
    runs: list[str],
) -> None:
    result = invoke("logs", runs[0][:8])
    assert result.exit_code == 0
    assert [line.split(" ", 1)[1] for line in result.stdout.splitlines()] == [
        f"INFO    [work-{runs[0][:8]}1[{i}]] working on {i}" for i in range(3)
    ]
    key = f"work-{runs[0][:8]}1[1]"
    assert invoke("logs", runs[0], "--task", key).stdout.count("working on") == 1
    assert invoke("logs", runs[0], "--task", "work").stdout.count("working on") == 3
    followed = invoke("logs", runs[0], "--follow")
    assert followed.exit_code == 0 and followed.stdout == result.stdout


def test_db_upgrade_and_info(env: str) -> None:
    head = head_revision()
    result = invoke("db", "upgrade")
    assert result.exit_code == 0 and f"upgraded from (empty) to {head}" in result.stdout
    assert f"is up to date (revision {head})" in invoke("db", "upgrade").stdout
    info = json.loads(invoke("db", "info", "--json").stdout)
    assert info["backend"] == "sqlite" and info["revision"] == info["head"] == head
    assert info["flow_runs"] == 0


def test_db_refuses_foreign_and_newer_databases_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    foreign = tmp_path / "shop.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE orders (id INTEGER)")
    before = foreign.read_bytes()
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", f"sqlite:///{foreign}")
    for args in (("db", "upgrade"), ("db", "info"), ("runs", "ls")):
        result = invoke(*args)
        assert result.exit_code == 2
        assert "is not a dagflow database" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert foreign.read_bytes() == before

    newer = f"sqlite:///{tmp_path / 'newer.db'}"
    store = open_store(newer)
    with store.engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = 'abcd'"))
    store.close()
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", newer)
    result = invoke("runs", "ls")
    assert result.exit_code == 2 and "newer than this dagflow knows" in result.stderr

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00garbage" * 512)
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", f"sqlite:///{garbage}")
    result = invoke("db", "info")
    assert result.exit_code == 2 and "not a database" in result.stderr
    assert garbage.read_bytes() == b"\x00garbage" * 512
