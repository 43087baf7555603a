"""`dagflow runs`, `dagflow logs` and `dagflow db` through click's CliRunner on a real database."""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import sqlite3
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from dagflow.cli import main as cli
from dagflow.core.runs import FlowRunStarted, StateEvent
from dagflow.core.states import StateType
from dagflow.store import StoreWriter, open_store
from dagflow.store.database import head_revision
from dagflow.store.schema import VERSION_TABLE
from tests.store.conftest import new_id, run_events, troubled_run_events

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
        "wall_time",
        "error_type",
        "error",
        "parent_run_id",
        "cluster_address",
        "dashboard_link",
        "entrypoint",
        "deployment",
        "scheduled_time",
        "origin",
        "event_id",
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
    assert "work[0..2]  3 COMPLETED" in result.stdout  # a mapped task is one group
    shown = invoke("runs", "show", runs[0], "--all").stdout
    assert shown.count("work[") == 3 and "work-" not in shown  # logical keys, one row each

    data = json.loads(invoke("runs", "show", runs[0], "--json").stdout)
    assert data["id"] == runs[0] and len(data["tasks"]) == 3
    assert set(data["tasks"][0]) == {
        "key",
        "dask_key",
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
        "traceback",
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
        f"INFO    [work[{i}]] working on {i}"
        for i in range(3)  # logical keys
    ]
    key = f"work-{runs[0][:8]}1[1]"
    assert invoke("logs", runs[0], "--task", key).stdout.count("working on") == 1
    assert invoke("logs", runs[0], "--task", "work[1]").stdout.count("working on") == 1
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


# ---------------------------------------------------------------- a failed run, read from the CLI


@pytest.fixture
def troubled(env: str) -> str:
    store = open_store(env)
    writer = StoreWriter(store.url)
    run_id = new_id()
    writer.handle(troubled_run_events(run_id))
    writer.close(30)
    store.close()
    return run_id


def table_rows(stdout: str) -> list[list[str]]:
    """The rows of the task table (below its header), cells split on runs of 2+ spaces."""
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("TASK "))
    return [re.split(r"\s{2,}", line.strip()) for line in lines[start + 1 :] if line.strip()]


def test_runs_show_lists_failures_first_then_groups_mapped_tasks(troubled: str) -> None:
    result = invoke("runs", "show", troubled[:8])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "error: UpstreamFailed: task 'total' did not run" in out
    assert "UpstreamFailed: UpstreamFailed" not in out and "OSError: OSError" not in out
    token = f"{troubled[:8]}1"
    rows = table_rows(out)
    assert [r[:2] for r in rows[:3]] == [
        ["work[3]", "FAILED"],
        ["work[7]", "FAILED"],
        ["total[0]", "UPSTREAM_FAILED"],
    ]
    assert rows[0][-1] == "OSError: disk 3 unreadable"
    assert rows[3][:2] == ["work[0..9]", "8 COMPLETED, 2 FAILED"]
    assert rows[3][-1] == "OSError: disk 3 unreadable (and 1 more)"
    assert rows[4][:3] == ["fetch[0]", "COMPLETED", "2"]
    assert not any(token in cell for row in rows for cell in row)  # logical keys in the table
    assert len(rows) == 5


def test_runs_show_filters_by_state_and_lists_all_on_request(troubled: str) -> None:
    rows = table_rows(invoke("runs", "show", troubled, "--state", "failed").stdout)
    assert [r[:2] for r in rows] == [["work[3..7]", "2 FAILED"]]
    rows = table_rows(invoke("runs", "show", troubled, "--state", "FAILED", "--all").stdout)
    assert [r[1] for r in rows] == ["FAILED", "FAILED"]
    both = invoke("runs", "show", troubled, "--state", "FAILED", "--state", "UPSTREAM_FAILED")
    assert [r[1] for r in table_rows(both.stdout)] == ["2 FAILED", "UPSTREAM_FAILED"]
    every = table_rows(invoke("runs", "show", troubled, "--all").stdout)
    assert len(every) == 12 and [r[1] for r in every[:3]] == ["FAILED", "FAILED", "UPSTREAM_FAILED"]
    none = invoke("runs", "show", troubled, "--state", "CRASHED")
    assert none.exit_code == 0 and "no task runs in state CRASHED" in none.stdout


def test_runs_show_all_attempts_lists_each_attempt_under_its_task(troubled: str) -> None:
    out = invoke("runs", "show", troubled, "--all-attempts").stdout
    lines = out.splitlines()
    fetch = next(i for i, line in enumerate(lines) if line.startswith("fetch[0]"))
    assert re.split(r"\s{2,}", lines[fetch + 1].strip()) == [
        "attempt 1", "RETRYING", "200.00 ms", "OSError: timed out (retry 1/2 in 0.50s)"
    ]  # fmt: skip
    assert re.split(r"\s{2,}", lines[fetch + 2].strip()) == ["attempt 2", "COMPLETED", "100.00 ms"]


def test_runs_show_task_gives_its_attempts_and_traceback(troubled: str) -> None:
    token = f"{troubled[:8]}1"
    result = invoke("runs", "show", troubled, "--task", f"work-{token}[3]")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("work[3] (work, item 3)  FAILED")
    assert f"Dask key work-{token}[3]" in out
    assert "worker w1" in out
    assert re.search(
        r"^1\s+\d\d:\d\d:\d\d\.\d{3}\s+50\.00 ms\s+FAILED\s+OSError: disk 3", out, re.M
    )
    assert "traceback of attempt 1:\nTraceback (most recent call last):" in out
    assert out.rstrip().endswith("OSError: disk 3 unreadable")

    by_name = invoke("runs", "show", troubled, "--task", "fetch").stdout  # a task run once
    assert re.search(r"^1\s.*RETRYING\s+OSError: timed out \(retry 1/2 in 0\.50s\)$", by_name, re.M)
    assert re.search(r"^2\s.*COMPLETED$", by_name, re.M)
    assert "traceback" not in by_name
    assert invoke("runs", "show", troubled, "--task", "work[7]").stdout.startswith(
        "work[7] (work, item 7)"
    )

    data = json.loads(invoke("runs", "show", troubled, "--task", "work[3]", "--json").stdout)
    assert data["traceback"].startswith("Traceback") and data["run_id"] == troubled
    assert [h["to"] for h in data["history"]] == ["PENDING", "RUNNING", "FAILED"]
    assert data["started"].endswith("+00:00")


@pytest.mark.parametrize(
    ("ref", "message"),
    [("nosuch", "no task 'nosuch' in run"), ("work", "task 'work' names 10 task runs")],
)
def test_an_unknown_or_ambiguous_task_is_one_line_exit_2(
    troubled: str, ref: str, message: str
) -> None:
    for args in (("runs", "show", troubled, "--task", ref), ("logs", troubled, "--task", ref)):
        if args[0] == "logs" and ref == "work":
            continue  # logs take a task name: every record of that task
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
        assert message in result.stderr
        if ref == "nosuch":
            assert "its tasks: fetch, total, work" in result.stderr


def test_logs_show_retries_and_failures_with_their_tracebacks_in_time_order(troubled: str) -> None:
    out = invoke("logs", troubled).stdout
    body = [line.split(" ", 1)[1] for line in out.splitlines() if not line.startswith(" ")]
    assert body == [
        "FAILED  [work[3]] attempt 1: OSError: disk 3 unreadable",
        "FAILED  [work[7]] attempt 1: OSError: disk 7 unreadable",
        "WARNING [fetch[0]] slow server",
        "RETRYING [fetch[0]] attempt 1: OSError: timed out (retry 1/2 in 0.50s)",
    ]
    assert "    Traceback (most recent call last):\n" in out
    assert out.count("Traceback") == 2  # each failure's own, below its line

    only = invoke("logs", troubled, "--task", "fetch").stdout
    assert "slow server" in only and "RETRYING" in only and "disk" not in only

    records = [json.loads(line) for line in invoke("logs", troubled, "--json").stdout.splitlines()]
    assert [r["kind"] for r in records] == ["state", "state", "log", "state"]
    assert records[0]["traceback"].startswith("Traceback") and records[0]["time"].endswith("+00:00")
    assert records[2] == {
        "kind": "log",
        "time": records[2]["time"],
        "level": "WARNING",
        "task_key": "fetch[0]",
        "task_name": "fetch",
        "worker": "w2",
        "message": "slow server",
    }
    assert records[3]["traceback"] is None  # a retried attempt's traceback is not kept


def test_runs_ls_counts_only_completed_tasks_as_done_and_pipes_uncut(env: str) -> None:
    store = open_store(env)
    writer = StoreWriter(store.url)
    cancelled, long_name = new_id(), "a-flow-with-a-very-long-name-" * 4
    events = run_events(cancelled, 4, flow=long_name, final=S.CANCELLED)
    # only the first task completed; the others were cancelled while pending
    kept = [
        e for e in events if getattr(e, "task_key", None) in (None, f"work-{cancelled[:8]}1[0]")
    ]
    for i in range(1, 4):
        key = f"work-{cancelled[:8]}1[{i}]"
        t = events[0].time
        kept.insert(-1, StateEvent(cancelled, key, None, S.PENDING, t, 0, "", "work", i))
        kept.insert(-1, StateEvent(cancelled, key, S.PENDING, S.CANCELLED, t + 1, 0, "", "work", i))
    writer.handle(kept)
    writer.close(30)
    store.close()
    out = invoke("runs", "ls").stdout
    (line,) = [row for row in out.splitlines() if cancelled[:12] in row]
    assert long_name in line and "CANCELLED" in line  # one row, nothing cut in a pipe
    assert line.rstrip().endswith("1/4 (3 cancelled)")
    assert max(len(row) for row in out.splitlines()) > 80


def test_a_resumed_runs_duration_is_its_running_time(env: str) -> None:
    store = open_store(env)
    writer = StoreWriter(store.url)
    run_id, t = new_id(), 1.9e9
    events = run_events(run_id, 2, t0=t)[:-1]  # ran 10 s, then its driver was lost
    events += [
        StateEvent(run_id, None, S.RUNNING, S.CRASHED, t + 10, 1, "driver lost"),
        StateEvent(run_id, None, S.CRASHED, S.PENDING, t + 1000, 1, "resumed"),
        StateEvent(run_id, None, S.PENDING, S.RUNNING, t + 1000, 2),
        StateEvent(run_id, None, S.RUNNING, S.COMPLETED, t + 1005, 2),
    ]
    writer.handle(events)
    writer.close(30)
    store.close()
    (row,) = [r for r in invoke("runs", "ls").stdout.splitlines() if run_id[:12] in r]
    assert "15.00 s" in row
    shown = invoke("runs", "show", run_id).stdout
    assert "ran 15.00 s (wall time 16m 45s, across its stops and resumes)" in shown
    data = json.loads(invoke("runs", "show", run_id, "--json").stdout)
    assert data["duration"] == pytest.approx(15.0) and data["wall_time"] == pytest.approx(1005.0)


def test_runs_show_marks_a_dashboard_whose_cluster_is_gone(env: str) -> None:
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    gone = socket.socket()
    gone.bind(("127.0.0.1", 0))
    gone_port = gone.getsockname()[1]
    gone.close()  # nothing listens there any more
    store = open_store(env)
    writer = StoreWriter(store.url)
    ids = {}
    for name, port in (("alive", listening.getsockname()[1]), ("gone", gone_port)):
        run_id = ids[name] = new_id()
        events = run_events(run_id, 1)
        start = events[0]
        assert isinstance(start, FlowRunStarted)
        events[0] = dataclasses.replace(
            start,
            cluster_address=f"tcp://127.0.0.1:{port}",
            dashboard_link=f"http://127.0.0.1:{port + 1}/status",
        )
        writer.handle(events)
    writer.close(30)
    store.close()
    try:
        alive = invoke("runs", "show", ids["alive"]).stdout
        assert "dashboard http://" in alive and "gone" not in alive
        dead = invoke("runs", "show", ids["gone"]).stdout
        assert "(gone: that cluster no longer answers)" in dead
    finally:
        listening.close()


def test_a_run_still_going_shows_its_running_time_so_far(env: str) -> None:
    store = open_store(env)
    writer = StoreWriter(store.url)
    run_id = new_id()
    writer.handle(run_events(run_id, 1, t0=time.time() - 5)[:-1])  # no end yet
    writer.close(30)
    store.close()
    (row,) = [r for r in invoke("runs", "ls").stdout.splitlines() if run_id[:12] in r]
    assert "RUNNING" in row and " s " in row  # seconds so far, not "-"
    assert re.search(r"running for \d+\.\d\d s", invoke("runs", "show", run_id).stdout)
    assert json.loads(invoke("runs", "show", run_id, "--json").stdout)["duration"] is None
