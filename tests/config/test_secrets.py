"""Secrets: encrypted at rest, keys from DAGFLOW_SECRET_KEY or a 0600 key file, rotated; the CLI
never takes or shows a value; and a secret used by a flow on worker processes leaves no trace
in the database (file bytes, every table), the API, the pages or the CLI."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, select, text

import dagflow
from dagflow import StateType, flow, get_run_logger, task
from dagflow.cli import main
from dagflow.errors import NotFound, SecretError, UsageError
from dagflow.runtime import close_stores
from dagflow.store import Store, open_store
from dagflow.store.schema import metadata
from tests.server.conftest import Live

S = StateType


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGFLOW_SECRET_KEY", raising=False)
    return tmp_path / "home"


def opened(url: str) -> Store:
    return open_store(url)


def test_values_are_encrypted_with_a_key_file_made_on_first_use(
    home: Path, sqlite_url: str
) -> None:
    store = opened(sqlite_url)
    try:
        assert store.run_config().secrets == {}
        assert not (home / "secret-key").exists()  # nothing stored, no key needed
        store.set_secret("db_password", "correct horse battery")
        key_file = home / "secret-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert [s.name for s in store.secrets()] == ["db_password"]
        with store.engine.connect() as conn:
            (token,) = conn.execute(text("SELECT token FROM secrets")).one()
        assert "correct horse" not in token
        key = key_file.read_text().strip().encode()
        assert Fernet(key).decrypt(token.encode()) == b"correct horse battery"
        assert store.run_config().secrets == {"db_password": "correct horse battery"}

        count = store.rotate_secret_key()
        assert count == 1
        new_key = key_file.read_text().strip().encode()
        assert new_key != key and len(key_file.read_text().split()) == 1
        assert store.run_config().secrets == {"db_password": "correct horse battery"}

        store.remove_secret("db_password")
        with pytest.raises(NotFound, match="no secret named 'db_password'"):
            store.remove_secret("db_password")
    finally:
        store.close()


def test_a_missing_malformed_or_wrong_key_is_one_clear_line(
    home: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = opened(sqlite_url)
    try:
        store.set_secret("api_token", "tok-123456")
        (home / "secret-key").chmod(0o644)
        with pytest.raises(SecretError, match="may be read by other users"):
            store.set_secret("other", "value-2")
        assert "may be read by other users" in (store.run_config().secret_error or "")
        (home / "secret-key").unlink()
        config = store.run_config()
        assert config.secrets == {}
        assert config.secret_error is not None
        assert "no key to decrypt them: set DAGFLOW_SECRET_KEY" in config.secret_error

        monkeypatch.setenv("DAGFLOW_SECRET_KEY", Fernet.generate_key().decode())
        monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
        cli = CliRunner()
        wrong = cli.invoke(main, ["secrets", "set", "other"], input="value-2\n")
        assert wrong.exit_code == 2, wrong.output
        assert "cannot decrypt secret 'api_token' with the key from DAGFLOW_SECRET_KEY" in (
            wrong.output
        )
        assert "Traceback" not in wrong.output and len(wrong.output.splitlines()) == 1

        close_stores()  # the CLI's process would read the environment afresh
        monkeypatch.setenv("DAGFLOW_SECRET_KEY", "not-a-key")
        bad = cli.invoke(main, ["secrets", "set", "other"], input="value-2\n")
        assert bad.exit_code == 2
        assert bad.output.startswith("Error: DAGFLOW_SECRET_KEY is not a Fernet key")
        assert "not-a-key" not in bad.output
    finally:
        store.close()


def test_rotating_a_key_given_in_the_environment(
    home: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv("DAGFLOW_SECRET_KEY", old)
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    cli = CliRunner()
    assert cli.invoke(main, ["secrets", "set", "a"], input="first-value").exit_code == 0
    close_stores()
    monkeypatch.setenv("DAGFLOW_SECRET_KEY", f"{new},{old}")
    out = cli.invoke(main, ["secrets", "rotate-key"])
    assert out.output == "1 secret re-encrypted with the key from DAGFLOW_SECRET_KEY\n"
    monkeypatch.setenv("DAGFLOW_SECRET_KEY", new)  # the old key can go now
    store = opened(sqlite_url)
    try:
        assert store.run_config().secrets == {"a": "first-value"}
    finally:
        store.close()
    assert not (home / "secret-key").exists()


def test_the_commands_never_take_or_show_a_value(
    home: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    cli = CliRunner()
    value = "pw-" + uuid.uuid4().hex
    done = cli.invoke(main, ["secrets", "set", "db_password"], input=value + "\n")
    assert done.exit_code == 0 and done.output == "secret db_password set\n"
    on_argv = cli.invoke(main, ["secrets", "set", "db_password", value])
    assert on_argv.exit_code == 2 and "unexpected extra argument" in on_argv.output.lower()
    empty = cli.invoke(main, ["secrets", "set", "x"], input="")
    assert empty.exit_code == 2 and "no value on standard input" in empty.output
    short = cli.invoke(main, ["secrets", "set", "x"], input="abc")
    assert short.exit_code == 2 and "shorter than 4 characters" in short.output
    listed = cli.invoke(main, ["secrets", "ls"]).output
    json_listed = cli.invoke(main, ["secrets", "ls", "--json"]).output
    assert "db_password" in listed and value not in listed + json_listed
    assert [s["name"] for s in json.loads(json_listed)] == ["db_password"]
    assert cli.invoke(main, ["secrets", "rm", "db_password"]).output == (
        "secret db_password removed\n"
    )
    gone = cli.invoke(main, ["secrets", "rm", "db_password"])
    assert gone.exit_code == 2 and "no secret named 'db_password'" in gone.output
    with pytest.raises(UsageError, match="invalid secret name"):
        opened(sqlite_url).set_secret("no way", "value-1")


# ---------------------------------------------------------------------------- no trace anywhere


@task(log_prints=True)
def connect(user: str) -> str:
    password = dagflow.secrets.get("db_password")
    log = get_run_logger()
    log.info("connecting with %s", password)
    print(f"dsn=postgresql://{user}:{quote(password, safe='')}@db.internal/app")
    basic = base64.b64encode(f"{user}:{password}".encode()).decode()
    log.warning("Authorization: Basic %s", basic)
    return hashlib.sha256(password.encode()).hexdigest()


@task
def refused(digest: str) -> None:
    password = dagflow.secrets.get("db_password")
    raise PermissionError(f"login refused for {password!r} (digest {digest[:8]})")


@flow(cluster="local", log_prints=True)
def leaky(user: str, token: SecretStr) -> str:
    password = dagflow.secrets.get("db_password")
    print("the body holds", password, "and", token.get_secret_value())
    get_run_logger().info("api token %s", token.get_secret_value())
    digest = connect(user)
    refused(digest)
    return digest.result()


def traces(value: str) -> list[str]:
    """What a leak of `value` would look like."""
    raw = value.encode()
    return [
        value,
        quote(value, safe=""),
        base64.b64encode(raw).decode()[:-4],
        base64.b64encode(b"app:" + raw).decode()[8:-8],
    ]


def leaks(blob: str | bytes, secrets: list[str]) -> list[str]:
    data = blob if isinstance(blob, bytes) else blob.encode("utf-8", "replace")
    return [t for s in secrets for t in traces(s) if t.encode() in data]


@pytest.fixture
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("DAGFLOW_SECRET_KEY", key)
    return key


@pytest.mark.cluster
def test_a_secret_used_on_worker_processes_leaves_no_trace(
    secret_key: str, live: Live, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = f"Pa55/w0rd+{uuid.uuid4().hex[:12]}=é"
    api_token = f"tok_{uuid.uuid4().hex}"
    planted = [password, api_token]
    live.store.set_secret("db_password", password)
    run = leaky.run(user="app", token=SecretStr(api_token))
    close_stores()  # everything the run emitted is committed
    assert run.state is S.FAILED
    (done,) = run.tasks_named("connect")
    assert done.state is S.COMPLETED  # the task on a worker process read the real value:
    logs = run.logs()
    assert any("connecting with ***" in ev.message for ev in logs)
    assert any("dsn=postgresql://app:***@db.internal/app" in ev.message for ev in logs)
    assert any("the body holds *** and ***" in ev.message for ev in logs)
    (failed,) = run.tasks_named("refused")
    assert failed.state is S.FAILED
    assert "login refused for '***'" in (failed.error or "")
    digest = hashlib.sha256(password.encode()).hexdigest()[:8]
    assert f"(digest {digest})" in (failed.error or "")  # the worker had the very value
    assert leaks(repr(run) + (run.error or "") + (failed.traceback or ""), planted) == []
    for ev in logs:
        assert leaks(ev.message, planted) == [], ev.message

    # Every table of the database, row by row.
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                rows = conn.execute(select(table)).all()
                assert leaks(repr(rows), planted) == [], table.name
    finally:
        engine.dispose()
    # The SQLite file's bytes, with its write-ahead log.
    if db_url.startswith("sqlite"):
        path = Path(db_url.removeprefix("sqlite:///"))
        for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if part.exists():
                assert leaks(part.read_bytes(), planted) == [], part

    # Every API response and page about the run.
    answers = []
    for path in (
        "/api/v1/runs",
        f"/api/v1/runs/{run.id}",
        f"/api/v1/runs/{run.id}/task-runs",
        f"/api/v1/runs/{run.id}/history",
        f"/api/v1/runs/{run.id}/logs",
        f"/api/v1/runs/{run.id}/error",
        f"/api/v1/runs/{run.id}/parameters",
        "/api/v1/secrets",
        "/runs",
        f"/runs/{run.id}",
        f"/runs/{run.id}/parts/header",
        f"/runs/{run.id}/parts/tasks",
        f"/runs/{run.id}/parts/logs",
        f"/runs/{run.id}/charts/gantt",
    ):
        response = live.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        answers.append(response.text)
    assert "login refused for" in "".join(answers)  # the API does show the (masked) error
    assert leaks("\n".join(answers), planted) == []

    # The CLI.
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", db_url)
    cli = CliRunner()
    shown = [
        cli.invoke(main, ["logs", run.id]).output,
        cli.invoke(main, ["runs", "show", run.id]).output,
        cli.invoke(main, ["runs", "show", run.id, "--json"]).output,
        cli.invoke(main, ["secrets", "ls", "--json"]).output,
    ]
    assert "connecting with ***" in shown[0]
    assert leaks("\n".join(shown), planted) == []
    close_stores()
    assert leaks("\n".join(answers + shown), [secret_key]) == []  # nor the key


def test_a_secret_missing_in_a_run_fails_the_task_naming_it(
    home: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch, threads_cluster: str
) -> None:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)

    @flow
    def needs_secret() -> str:
        return dagflow.secrets.get("nowhere")

    run = needs_secret.run()
    assert run.state is S.FAILED
    assert "no secret named 'nowhere'" in (run.error or "")


def test_the_api_takes_values_and_never_answers_them(secret_key: str, live: Live) -> None:
    http = live.http
    value = f"api-{uuid.uuid4().hex}"
    assert http.put("/api/v1/secrets/api_token", json={"value": value}).status_code == 204
    listed = http.get("/api/v1/secrets")
    assert [s["name"] for s in listed.json()] == ["api_token"] and value not in listed.text
    refused = http.put("/api/v1/secrets/api_token", json={"value": "abc", "extra": value})
    assert refused.status_code == 422 and value not in refused.text and "abc" not in refused.text
    assert http.put("/api/v1/secrets/bad%20name", json={"value": value}).status_code == 422
    assert http.get("/api/v1/secrets/api_token").status_code in (404, 405)
    assert http.delete("/api/v1/secrets/api_token").status_code == 204
    assert http.delete("/api/v1/secrets/api_token").status_code == 404
