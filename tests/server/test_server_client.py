"""`dagflow.client.Client` and the `runs`/`logs` commands through a live server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dagflow.cli import main as cli
from dagflow.client import Client
from dagflow.core.states import StateType
from dagflow.errors import NotFound, SettingsError, StateConflict, UsageError
from tests.server.conftest import TOKEN, Live, Recorded

pytestmark = [pytest.mark.cluster, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def test_the_client_reads_what_the_store_reads(live: Live, recorded: Recorded) -> None:
    with Client(live.url, TOKEN) as client:
        remote = client.get_flow_run(recorded.failed.id[:8])
        local = live.store.get_flow_run(recorded.failed.id)
        assert remote.id == local.id and remote.state is StateType.FAILED
        assert remote.parameters == local.parameters == {"n": 6}
        assert set(remote.task_runs.keys()) == set(local.task_runs.keys())
        for key, task in local.task_runs.items():
            got = remote.task_runs[key]
            assert (got.state, got.attempts, got.error, got.traceback) == (
                task.state,
                task.attempts,
                task.error,
                task.traceback,
            )
            assert [(h.to_state, h.attempt) for h in got.history] == [
                (h.to_state, h.attempt) for h in task.history
            ]
            assert got.started == pytest.approx(task.started)
        assert [h.to_state for h in remote.history] == [h.to_state for h in local.history]
        assert [ev.message for ev in remote.logs()] == [ev.message for ev in local.logs()]

        listed = client.list_flow_runs(state="failed")
        assert [r.id for r in listed] == [recorded.failed.id]
        assert listed[0].counts() == local.counts()
        summaries = client.list_runs(limit=2)
        assert [s.run.id for s in summaries] == [recorded.noisy.id, recorded.completed.id]
        assert summaries[1].task_counts == {StateType.COMPLETED: 4}
        assert client.resolve(recorded.completed.id[:9]) == recorded.completed.id
        assert client.run_state(recorded.completed.id) is StateType.COMPLETED
        assert client.run_state("0123456789abcdef") is None


def test_client_errors_are_dagflows(live: Live, recorded: Recorded) -> None:
    with Client(live.url, TOKEN) as client:
        with pytest.raises(NotFound, match="no flow run"):
            client.get_flow_run("0123456789abcdef")
        with pytest.raises(StateConflict, match="COMPLETED"):
            client.cancel(recorded.completed.id)
        with pytest.raises(UsageError, match="state"):
            client.list_runs(state="NOPE")
    with Client(live.url, "wrong") as client, pytest.raises(SettingsError, match="token"):
        client.list_runs()


def remote(live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> Result:
    """The CLI with the server's URL and token, and NO database it could read by itself."""
    monkeypatch.setenv("DAGFLOW_API_URL", live.url)
    monkeypatch.setenv("DAGFLOW_API_TOKEN", TOKEN)
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "laptop"))
    return CliRunner().invoke(cli, list(args))


def test_runs_and_logs_commands_go_through_the_server(
    live: Live, recorded: Recorded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    listed = remote(live, monkeypatch, tmp_path, "runs", "ls", "--json")
    assert listed.exit_code == 0, listed.output
    data = json.loads(listed.stdout)
    assert [d["id"] for d in data] == [recorded.noisy.id, recorded.completed.id, recorded.failed.id]
    assert data[2]["task_counts"] == {"COMPLETED": 4, "FAILED": 2, "UPSTREAM_FAILED": 1}
    table = remote(live, monkeypatch, tmp_path, "runs", "ls")
    assert "FAILED" in table.stdout and "4/7 (3 failed)" in table.stdout

    shown = remote(live, monkeypatch, tmp_path, "runs", "show", recorded.failed.id[:10], "--json")
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["state"] == "FAILED" and len(doc["tasks"]) == 7
    assert [h["to"] for h in doc["history"]] == ["PENDING", "RUNNING", "FAILED"]

    logs = remote(live, monkeypatch, tmp_path, "logs", recorded.noisy.id[:10])
    assert logs.exit_code == 0, logs.output
    assert "needle in the haystack" in logs.stdout and "ERROR" in logs.stdout
    followed = remote(live, monkeypatch, tmp_path, "logs", recorded.noisy.id, "--follow")
    assert followed.exit_code == 0 and followed.stdout == logs.stdout


def test_remote_cli_mistakes_are_one_line(
    live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = remote(live, monkeypatch, tmp_path, "runs", "show", "0123456789abcdef")
    assert missing.exit_code == 2 and "no flow run" in missing.output
    assert "Traceback" not in missing.output and len(missing.output.strip().splitlines()) == 1
    monkeypatch.setenv("DAGFLOW_API_TOKEN", "wrong")
    refused = CliRunner().invoke(cli, ["runs", "ls"])
    assert refused.exit_code == 2 and "refused the token" in refused.output
    monkeypatch.setenv("DAGFLOW_API_URL", "ftp://example")
    bad = CliRunner().invoke(cli, ["runs", "ls"])
    assert bad.exit_code == 2 and "DAGFLOW_API_URL" in bad.output
    monkeypatch.setenv("DAGFLOW_API_URL", "http://127.0.0.1:1")
    down = CliRunner().invoke(cli, ["runs", "ls"])
    assert down.exit_code == 2 and "cannot reach the dagflow server" in down.output
