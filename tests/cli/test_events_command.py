"""`dagflow events ls`, `deployments show` with triggers, `deployments run` of a templated
deployment, on a real database (CliRunner; the watchers themselves are in tests/scheduler)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from dagflow import triggers
from dagflow.cli import main as cli
from dagflow.core.events import Event, event_id, template_context
from dagflow.entrypoints import load_flow
from dagflow.scheduler import templates
from dagflow.store import Store, open_store

FLOWS = """
from dagflow import flow

@flow
def ingest(path: str) -> str:
    return path
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def fired(tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Store, str]:
    """A deployment with a files trigger and one event that started a run."""
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    (tmp_path / "ingestflows.py").write_text(FLOWS)
    flow = load_flow(f"{tmp_path / 'ingestflows.py'}:ingest")
    dep = flow.to_deployment(  # type: ignore[attr-defined]
        "inbox",
        triggers=[triggers.files(str(tmp_path / "in/*.csv"), name="csvs")],
        parameters={"path": "{{ event.path }}"},
    )
    store = open_store(sqlite_url)
    store.save_deployments([dep])
    event = Event(event_id(dep.full_name, "csvs", "a|1|1"), "files", str(tmp_path / "in"),
                  {"path": "/in/a.csv", "size": 1}, 1_800_000_000.0)  # fmt: skip
    [done] = store.fire(
        dep, "csvs", [[event]], lambda evs: templates.render(dep.parameters, template_context(evs))
    )
    assert done.run_id
    return store, done.run_id


def test_events_ls_lists_the_event_and_its_run(fired: tuple[Store, str]) -> None:
    _, run_id = fired
    table = invoke("events", "ls")
    assert table.exit_code == 0
    assert "files" in table.stdout and "ingest/inbox" in table.stdout
    assert "/in/a.csv" in table.stdout and run_id[:12] in table.stdout
    [doc] = json.loads(invoke("events", "ls", "--json").stdout)
    assert set(doc) == {"id", "kind", "source", "time", "deployment", "trigger", "run_id",
                        "error", "payload"}  # fmt: skip
    assert doc["run_id"] == run_id and doc["payload"]["path"] == "/in/a.csv"
    assert json.loads(invoke("events", "ls", "--run", run_id[:10], "--json").stdout) == [doc]
    assert json.loads(invoke("events", "ls", "-d", "inbox", "--json").stdout) == [doc]


def test_runs_show_says_which_event_started_the_run(fired: tuple[Store, str]) -> None:
    _, run_id = fired
    shown = invoke("runs", "show", run_id)
    assert "started by files event" in shown.stdout and "(/in/a.csv)" in shown.stdout
    assert json.loads(invoke("runs", "show", run_id, "--json").stdout)["event_id"]


def test_deployments_show_lists_each_trigger_with_its_position(fired: tuple[Store, str]) -> None:
    shown = invoke("deployments", "show", "ingest/inbox")
    assert "csvs: files " in shown.stdout and "1 event(s), last event 2027-01-15" in shown.stdout
    doc = json.loads(invoke("deployments", "show", "ingest/inbox", "--json").stdout)
    [trigger] = doc["triggers"]
    assert trigger["name"] == "csvs" and trigger["events"] == 1 and trigger["kind"] == "files"


def test_a_manual_run_records_a_manual_event_and_needs_templated_values(
    fired: tuple[Store, str],
) -> None:
    store, _ = fired
    refused = CliRunner().invoke(cli, ["deployments", "run", "ingest/inbox"])
    assert refused.exit_code == 2
    assert "parameters.path: a template of the event" in refused.output
    assert "-p path=VALUE" in refused.output
    made = invoke("deployments", "run", "ingest/inbox", "-p", "path=/data/x.csv")
    assert made.exit_code == 0
    run_id = made.stdout.split()[1]
    run = store.get_flow_run(run_id)
    assert run.origin == "manual" and run.parameters == {"path": "/data/x.csv"}
    [record] = store.events(run_id=run_id)
    assert record.event.kind == "manual" and record.trigger == "manual"
