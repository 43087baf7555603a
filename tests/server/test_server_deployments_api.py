"""`/api/v1/deployments` and `POST /api/v1/runs/{ref}/resume` against a live server and a real
database: what is listed and shown, pause and resume, runs created with parameters validated as
the CLI validates them (the same line for the same mistake), resume requests queued."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dagflow.cli import main as cli
from dagflow.client import Client
from dagflow.core.states import StateType
from dagflow.entrypoints import load_flow
from dagflow.errors import DeploymentError, NotFound, StateConflict
from dagflow.scheduler.definitions import build
from dagflow.store import NewRun, Store, StoreWriter
from tests.server.conftest import TOKEN, Live
from tests.store.conftest import new_id, run_events

S = StateType
pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

FLOWS = """
from dagflow import flow

@flow
def report(day: str, rows: int = 10, tags: list[str] | None = None) -> int:
    '''A daily report.'''
    return rows
"""


@pytest.fixture
def registered(live: Live, tmp_path: Path) -> str:
    path = tmp_path / "reports.py"
    path.write_text(FLOWS)
    flow = load_flow(f"{path}:report")
    hourly = build(
        flow, "hourly", cron="0 3 * * 1-5", timezone="Europe/Paris", parameters={"day": "mon"}
    )
    often = build(flow, "often", interval=90, parameters={"day": "tue"}, paused=True)
    live.store.save_deployments([hourly, often])
    return hourly.full_name


def failed_run_of(store: Store, name: str) -> str:
    """A run of deployment `name` that was claimed and could not start: it ended FAILED."""
    dep = store.deployment(name)
    # an hour ago: the oldest due run, claimed first (the deployment runs one at a time)
    (run_id,) = store.create_runs([NewRun(dep, time.time() - 3600, "manual", new_id(), {})])
    claimed = store.claim_due("serve-x", time.time(), 5, deployment_ids=[name])
    assert [c.run_id for c in claimed] == [run_id]
    assert store.fail_unstarted(run_id, "serve-x", "it broke", "RuntimeError")
    return run_id


def test_deployments_are_listed_with_schedules_in_words_and_next_ticks(
    live: Live, registered: str
) -> None:
    listed = live.get("/api/v1/deployments").json()
    assert [d["name"] for d in listed] == ["report/hourly", "report/often"]
    hourly, often = listed
    assert hourly["schedules"] == [
        {
            "kind": "cron",
            "spec": {"cron": "0 3 * * 1-5", "timezone": "Europe/Paris"},
            "words": "At 03:00, Monday through Friday (Europe/Paris)",
        }
    ]
    ticks = hourly["next_ticks"]
    assert len(ticks) == 5 and ticks == sorted(ticks) and all(t.endswith("Z") for t in ticks)
    assert often["schedules"][0]["words"] == "Every 1 minute 30 seconds"
    assert often["paused"] is True and often["next_ticks"] == []
    shown = live.get("/api/v1/deployments/hourly").json()  # a name unique across flows will do
    assert shown["name"] == "report/hourly" and shown["parameters"] == {"day": "mon"}
    assert shown["description"] == "A daily report." and shown["schema_error"] is None
    schema = shown["parameter_schema"]
    assert set(schema["properties"]) == {"day", "rows", "tags"} and schema["required"] == ["day"]
    assert live.get("/api/v1/deployments/report/nope").status_code == 404
    assert live.get("/api/v1/deployments/nope").json()["detail"].startswith("no deployment")


def test_pause_and_resume(live: Live, registered: str) -> None:
    paused = live.http.post("/api/v1/deployments/report/hourly/pause").json()
    assert paused["paused"] is True and paused["next_ticks"] == []
    assert live.store.deployment("report/hourly").paused
    resumed = live.http.post("/api/v1/deployments/report/hourly/resume").json()
    assert resumed["paused"] is False and len(resumed["next_ticks"]) == 5
    assert live.http.post("/api/v1/deployments/report/x/pause").status_code == 404


def test_a_run_is_created_with_parameters_validated_as_the_cli_validates_them(
    live: Live, registered: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "/api/v1/deployments/report/hourly/runs"
    bad = live.http.post(url, json={"params": ["rows=many"]})
    assert bad.status_code == 422
    body = bad.json()
    assert [d["loc"] for d in body["detail"]] == [["body", "parameters", "rows"]]
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", str(live.store.url))
    cli_says = CliRunner().invoke(cli, ["deployments", "run", "report/hourly", "-p", "rows=many"])
    assert cli_says.exit_code == 2
    assert cli_says.output.strip() == f"Error: {body['message']}"
    assert "'report/hourly': parameters: rows:" in body["message"]

    unknown = live.http.post(url, json={"parameters": {"colour": "red"}}).json()
    assert unknown["detail"][0]["loc"] == ["body", "parameters", "colour"]
    assert "unknown parameter 'colour'" in unknown["message"]
    assert live.http.post(url, json={"nope": 1}).status_code == 422  # fields of the body itself
    assert live.http.post(url, content=b"{not json").status_code == 422

    made = live.http.post(url, json={"params": ["rows=7", 'tags=["a", "b"]']})
    assert made.status_code == 201, made.text
    run = made.json()
    assert run["state"] == "SCHEDULED" and run["deployment"] == "report/hourly"
    assert run["parameters"] == {"day": "mon", "rows": 7, "tags": ["a", "b"]}
    again = live.http.post(url, json={"parameters": {"day": "fri"}}).json()
    assert again["parameters"] == {"day": "fri"}
    recorded = live.store.get_flow_run(again["id"])
    assert recorded.deployment == "report/hourly" and recorded.origin == "manual"
    default = live.http.post(url)  # no body: the deployment's defaults
    assert default.status_code == 201 and default.json()["parameters"] == {"day": "mon"}
    listed = live.get("/api/v1/runs", deployment="report/hourly").json()["runs"]
    assert [r["id"] for r in listed] == [default.json()["id"], again["id"], run["id"]]
    assert live.get("/api/v1/runs", deployment="report/often").json()["runs"] == []


def test_a_deployment_whose_file_is_gone_says_so_in_one_line(
    live: Live, registered: str, tmp_path: Path
) -> None:
    (tmp_path / "reports.py").unlink()
    shown = live.get("/api/v1/deployments/report/hourly").json()
    assert shown["parameter_schema"] is None
    assert shown["schema_error"] == f"no such file: {tmp_path / 'reports.py'}"
    made = live.http.post("/api/v1/deployments/report/hourly/runs", json={})
    assert made.status_code == 400 and made.json()["detail"] == shown["schema_error"]


def test_resume_queues_a_deployments_failed_run_and_refuses_the_others(
    live: Live, registered: str
) -> None:
    run_id = failed_run_of(live.store, "report/hourly")
    answer = live.http.post(f"/api/v1/runs/{run_id[:10]}/resume")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == run_id and body["state"] == "FAILED"
    assert live.store.resume_requested(run_id) is not None
    writer = StoreWriter(live.store.url)
    plain, done = new_id(), new_id()
    writer.handle(run_events(plain, 1, final=S.FAILED) + run_events(done, 1))
    writer.close(30)
    refused = live.http.post(f"/api/v1/runs/{plain}/resume")
    assert refused.status_code == 409
    assert refused.json()["detail"].endswith(f"dagflow resume {plain}")
    assert live.http.post(f"/api/v1/runs/{done}/resume").status_code == 409
    assert live.http.post("/api/v1/runs/ffffffffffff/resume").status_code == 404


def test_the_deployments_commands_say_the_same_through_the_server(
    live: Live, registered: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", str(live.store.url))
    commands = [
        ["deployments", "ls", "--json"],
        ["deployments", "ls"],
        ["deployments", "show", "hourly", "--json"],
        ["deployments", "run", "report/hourly", "-p", "rows=many"],
        ["deployments", "run", "report/hourly", "--params-json", '{"colour": 1}'],
        ["deployments", "show", "report/nope"],
        ["deployments", "pause", "report/nope"],
    ]
    local = [CliRunner().invoke(cli, args) for args in commands]
    remote = [remote_cli(live, monkeypatch, tmp_path, *args) for args in commands]
    for args, here, there in zip(commands, local, remote, strict=True):
        assert (there.exit_code, there.output) == (here.exit_code, here.output), args
    assert local[3].exit_code == 2 and "rows:" in local[3].output

    paused = remote_cli(live, monkeypatch, tmp_path, "deployments", "pause", "hourly")
    assert paused.output == "deployment report/hourly paused\n"
    assert live.store.deployment("report/hourly").paused
    resumed = remote_cli(live, monkeypatch, tmp_path, "deployments", "resume", "report/hourly")
    assert resumed.output == "deployment report/hourly resumed\n"
    assert not live.store.deployment("report/hourly").paused
    made = remote_cli(
        live, monkeypatch, tmp_path, "deployments", "run", "hourly", "-p", "rows=3",
        "--params-json", '{"day": "sun"}',
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    run_id = made.output.split()[1]
    assert made.output == f"run {run_id} of report/hourly created\n"
    run = live.store.get_flow_run(run_id)
    assert run.parameters == {"day": "sun", "rows": 3} and run.state is S.SCHEDULED
    here = CliRunner().invoke(cli, ["runs", "ls", "--json"])
    there = remote_cli(live, monkeypatch, tmp_path, "runs", "ls", "--json")
    assert there.output == here.output and '"deployment": "report/hourly"' in here.output


def remote_cli(live: Live, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *args: str) -> Any:
    """The CLI with the server's URL and token, and NO database it could read by itself."""
    with monkeypatch.context() as m:
        m.setenv("DAGFLOW_API_URL", live.url)
        m.setenv("DAGFLOW_API_TOKEN", TOKEN)
        m.setenv("DAGFLOW_DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
        m.setenv("DAGFLOW_HOME", str(tmp_path / "laptop"))
        return CliRunner().invoke(cli, list(args))


def test_the_client_drives_deployments_and_resumes(live: Live, registered: str) -> None:
    with Client(live.url, TOKEN) as client:
        remote = client.deployments()
        local = live.store.deployments()
        assert [i.deployment for i in remote] == [i.deployment for i in local]
        assert [i.created for i in remote] == pytest.approx([i.created for i in local], abs=1e-5)
        assert client.deployment("hourly") == live.store.deployment("hourly")
        assert client.parameter_schema("hourly")["required"] == ["day"]  # type: ignore[index]
        assert client.set_paused("hourly", True) == "report/hourly"
        assert client.deployment("report/hourly").paused
        client.set_paused("report/hourly", False)
        run_id = client.run_deployment("hourly", ["rows=4"], {"day": "wed"})
        assert live.store.get_flow_run(run_id).parameters == {"day": "wed", "rows": 4}
        with pytest.raises(DeploymentError, match="parameters: rows:") as bad:
            client.run_deployment("hourly", ["rows=x"])
        assert bad.value.errors[0]["loc"] == ["body", "parameters", "rows"]
        with pytest.raises(NotFound, match="no deployment"):
            client.deployment("report/nope")
        failed = failed_run_of(live.store, "report/hourly")
        got, state, asked = client.request_resume(failed)
        assert (got, state) == (failed, S.FAILED)
        assert live.store.resume_requested(failed) == pytest.approx(asked, abs=1e-3)
        with pytest.raises(StateConflict):
            client.request_resume(run_id)  # SCHEDULED: nothing to resume


HOSTILE = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"


def test_deployment_pages_escape_everything_and_refuse_cross_site_forms(
    live: Live, tmp_path: Path
) -> None:
    import httpx

    path = tmp_path / "hostile.py"
    path.write_text(FLOWS.replace("A daily report.", HOSTILE))
    dep = build(
        load_flow(f"{path}:report"), f"x {IMG}", parameters={"day": HOSTILE}, tags=[HOSTILE]
    )
    live.store.save_deployments([dep])
    quoted = "report/x%20%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"
    with httpx.Client(base_url=live.url) as browser:
        browser.post("/login", content=f"token={TOKEN}")
        for url in ("/deployments", "/parts/deployments", f"/deployments/{quoted}"):
            answer = browser.get(url)
            assert answer.status_code == 200, (url, answer.text[:300])
            assert HOSTILE not in answer.text and "&lt;script&gt;alert(1)" in answer.text, url
            assert IMG not in answer.text and "&lt;img src=x onerror=alert(1)&gt;" in answer.text
            assert "script-src 'self'" in answer.headers["content-security-policy"]
        form = {"content-type": "application/x-www-form-urlencoded", "origin": live.url}
        bad = browser.post(
            f"/deployments/{quoted}/run", content=f"param:rows={HOSTILE}", headers=form
        )
        assert bad.status_code == 422
        assert HOSTILE not in bad.text and 'class="field-error"' in bad.text
        assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in bad.text  # kept, as text
        cross = {**form, "origin": "http://evil.example"}
        refused = browser.post(f"/deployments/{quoted}/run", content="param:rows=1", headers=cross)
        assert refused.status_code == 401 and "Sign in" in refused.text
        assert [r for r in live.store.list_flow_runs() if r.deployment] == []
        good = browser.post(f"/deployments/{quoted}/run", content="param:rows=1", headers=form)
        assert good.status_code == 303 and good.headers["location"].startswith("/runs/")
