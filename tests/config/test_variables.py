"""Variables: stored as JSON (SQLite and PostgreSQL), the `dagflow variables` commands, the API,
and `dagflow.variables.get` in a flow body and in tasks on worker processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import dagflow
from dagflow import StateType, flow, task
from dagflow.cli import main
from dagflow.errors import NotFound, UsageError
from dagflow.store import Store
from tests.server.conftest import Live


def test_values_round_trip_as_json(store: Store) -> None:
    store.set_variable("region", "eu-west-1")
    store.set_variable("limits", {"rows": 10, "tables": ["a", "b"], "ratio": 0.5, "on": True})
    store.set_variable("region", "us-east-2")  # replaced, not added
    assert store.variable("region").value == "us-east-2"
    assert store.variable("limits").value == {
        "rows": 10,
        "tables": ["a", "b"],
        "ratio": 0.5,
        "on": True,
    }
    assert [v.name for v in store.variables()] == ["limits", "region"]
    assert store.run_config().variables == {
        "region": "us-east-2",
        "limits": store.variable("limits").value,
    }
    store.remove_variable("region")
    with pytest.raises(NotFound, match="no variable named 'region'"):
        store.variable("region")
    with pytest.raises(NotFound, match="'region'"):
        store.remove_variable("region")


def test_setting_again_keeps_when_it_was_made_and_says_when_it_changed(store: Store) -> None:
    """Variables, secrets and limits are one kind of row (`database.upsert_named`): set again,
    the value and its `updated` time change, its `created` time stays."""
    import time

    store.set_variable("region", "eu-west-1")
    store.set_secret("token", "s3cret-1")
    store.set_concurrency_limit("db", 2)
    first = (store.variable("region"), store.secrets()[0], store.concurrency_limits()[0])
    time.sleep(0.01)
    store.set_variable("region", "us-east-2")
    store.set_secret("token", "s3cret-2")
    store.set_concurrency_limit("db", 5)
    again = (store.variable("region"), store.secrets()[0], store.concurrency_limits()[0])
    for before, after in zip(first, again, strict=True):
        assert after.created == before.created and after.updated > before.updated, after
    assert again[0].value == "us-east-2" and again[2].slots == 5
    assert store.run_config().secrets == {"token": "s3cret-2"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("bad name", 1, "invalid variable name 'bad name'"),
        ("", 1, "invalid variable name ''"),
        ("x" * 129, 1, "at most 128"),
        ("nan", float("nan"), "variable 'nan': its value is not JSON"),
        ("obj", object(), "variable 'obj': its value is not JSON"),
        ("big", "x" * 1_000_001, "more than the 1,000,000 allowed"),
    ],
)
def test_bad_names_and_values_are_refused(
    sqlite_url: str,
    name: str,
    value: object,
    message: str,
) -> None:
    from dagflow.store import open_store

    opened = open_store(sqlite_url)
    try:
        with pytest.raises(UsageError, match=message):
            opened.set_variable(name, value)
        assert opened.variables() == []
    finally:
        opened.close()


def test_the_commands(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    cli = CliRunner()

    def ok(*args: str) -> str:
        result = cli.invoke(main, list(args))
        assert result.exit_code == 0, result.output
        return result.output

    assert "no variables" in ok("variables", "ls")
    assert ok("variables", "set", "region", "eu-west-1") == "variable region set\n"
    ok("variables", "set", "rows", "3")
    ok("variables", "set", "code", "3", "--string")
    ok("variables", "set", "tables", '["a", "b"]')
    assert json.loads(ok("variables", "get", "region")) == "eu-west-1"
    assert json.loads(ok("variables", "get", "rows")) == 3
    assert json.loads(ok("variables", "get", "code")) == "3"
    assert json.loads(ok("variables", "get", "tables")) == ["a", "b"]
    listed = json.loads(ok("variables", "ls", "--json"))
    assert [v["name"] for v in listed] == ["code", "region", "rows", "tables"]
    table = ok("variables", "ls")
    assert "region" in table and '"eu-west-1"' in table
    assert ok("variables", "rm", "rows") == "variable rows removed\n"

    missing = cli.invoke(main, ["variables", "get", "rows"])
    assert missing.exit_code == 2
    assert missing.output.strip() == (
        "Error: no variable named 'rows' (set one with: dagflow variables set rows VALUE)"
    )
    bad = cli.invoke(main, ["variables", "set", "no good", "1"])
    assert bad.exit_code == 2
    assert "invalid variable name 'no good'" in bad.output
    assert "Traceback" not in bad.output


def test_the_api(live: Live) -> None:
    http = live.http
    assert http.get("/api/v1/variables").json() == []
    put = http.put("/api/v1/variables/limits", json={"value": {"rows": 5}})
    assert put.status_code == 200, put.text
    assert put.json()["value"] == {"rows": 5}
    assert http.get("/api/v1/variables/limits").json()["value"] == {"rows": 5}
    assert [v["name"] for v in http.get("/api/v1/variables").json()] == ["limits"]
    assert http.get("/api/v1/variables/nope").status_code == 404
    assert http.put("/api/v1/variables/bad%20name", json={"value": 1}).status_code == 422
    assert http.put("/api/v1/variables/x", json={"wrong": 1}).status_code == 422
    assert http.delete("/api/v1/variables/limits").status_code == 204
    assert http.delete("/api/v1/variables/limits").status_code == 404
    import httpx

    anonymous = httpx.get(f"{live.url}/api/v1/variables")
    assert anonymous.status_code == 401


# ---------------------------------------------------------------------------- in runs


@task
def read_in_task(name: str) -> object:
    return dagflow.variables.get(name, default="fallback")


@task
def read_missing() -> object:
    return dagflow.variables.get("not_set_anywhere")


@flow(cluster="local")
def reads_variables() -> dict[str, object]:
    return {
        "body": dagflow.variables.get("region"),
        "body_default": dagflow.variables.get("absent", default=7),
        "task": read_in_task("limits").result(),
        "task_default": read_in_task("absent").result(),
    }


@flow(cluster="local")
def reads_a_missing_variable() -> object:
    return read_missing().result()


@pytest.mark.cluster
def test_flows_and_tasks_on_worker_processes_read_variables(
    sqlite_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    from dagflow.runtime import default_store

    history = default_store()
    history.set_variable("region", "eu-west-1")
    history.set_variable("limits", {"rows": 10})
    run = reads_variables.run()
    assert run.state is StateType.COMPLETED, run.error
    assert run.result() == {
        "body": "eu-west-1",
        "body_default": 7,
        "task": {"rows": 10},
        "task_default": "fallback",
    }
    # Outside a run, the history is read.
    assert dagflow.variables.get("region") == "eu-west-1"
    with pytest.raises(NotFound, match="no variable named 'nowhere'"):
        dagflow.variables.get("nowhere")

    failed = reads_a_missing_variable.run()
    assert failed.state is StateType.FAILED
    assert "no variable named 'not_set_anywhere'" in (failed.error or "")


def test_the_configuration_page_shows_variables_and_only_names_of_secrets(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cryptography.fernet import Fernet

    from dagflow.store import open_store

    monkeypatch.setenv("DAGFLOW_SECRET_KEY", Fernet.generate_key().decode())
    store = open_store(str(live.store.url.render_as_string(hide_password=False)))
    try:
        store.set_variable("region", "<script>alert(1)</script>")
        store.set_secret("db_password", "hunter2-hunter2")
        store.set_concurrency_limit("db", 2)
    finally:
        store.close()
    html = live.get("/config").text
    assert "db_password" in html and "hunter2" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    assert "<td><code>db</code></td><td>2</td>" in html
