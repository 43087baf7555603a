"""Notifications: Apprise URLs on a flow, checked at definition; messages posted to a real HTTP
receiver and sent to a real SMTP server on 127.0.0.1 when runs fail, complete or pause; a
notifier that fails is logged and changes nothing."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

import dagflow
from dagflow import Notifier, StateType, flow, task
from dagflow.cli import main
from dagflow.errors import DefinitionError

S = StateType
pytestmark = pytest.mark.cluster


@dataclass
class Receiver:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.posts


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A JSON webhook on 127.0.0.1 that keeps what is posted to it."""
    found = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            found.posts.append({"path": self.path, **json.loads(body)})
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    found.url = f"json://127.0.0.1:{server.server_address[1]}/hook"
    yield found
    server.shutdown()
    server.server_close()
    thread.join(10)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@task
def load(rows: int) -> int:
    if rows < 0:
        raise ValueError(f"cannot load {rows} rows\nsecond line of the error")
    return rows


def notified_flow(receiver: Receiver, dead: str) -> Any:
    @flow(
        name="nightly_load",
        cluster="local-threads",
        notify=[Notifier(receiver.url, on=["FAILED", "COMPLETED", "PAUSED"]), dead],
    )
    def nightly_load(rows: int, ask: bool = False) -> int:
        if ask:
            dagflow.pause("check before loading", timeout=60)
        return load(rows).result()

    return nightly_load


@pytest.fixture
def history(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("DAGFLOW_API_URL", "http://127.0.0.1:4200")
    return sqlite_url


def test_failure_completion_and_pause_are_posted_and_a_dead_notifier_changes_nothing(
    history: str, receiver: Receiver, threads_cluster: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"json://127.0.0.1:{closed_port()}/nobody"
    nightly_load = notified_flow(receiver, dead)
    with caplog.at_level(logging.WARNING, logger="dagflow.notifications"):
        failed = nightly_load.run(rows=-1)
    assert failed.state is S.FAILED
    (post,) = receiver.wait_for(1)
    assert post["path"] == "/hook"
    assert post["title"] == f"dagflow: flow nightly_load run {failed.id[:12]} FAILED"
    assert post["type"] == "failure"
    assert post["message"].splitlines() == [
        "Flow: nightly_load",
        f"Run: {failed.id}",
        "State: FAILED",
        "Error: ValueError: cannot load -1 rows",
        f"Run page: http://127.0.0.1:4200/runs/{failed.id}",
    ]
    # the dead notifier (told of failures by default) was logged, by scheme and host only
    assert any("notifier 'json://127.0.0.1:" in r.getMessage() for r in caplog.records)
    assert "nobody" not in caplog.text

    completed = nightly_load.run(rows=3)
    assert completed.state is S.COMPLETED and completed.result() == 3
    posts = receiver.wait_for(2)
    assert posts[1]["title"].endswith("COMPLETED") and posts[1]["type"] == "success"
    assert "Error:" not in posts[1]["message"]

    done: list[Any] = []
    thread = threading.Thread(target=lambda: done.append(nightly_load.run(rows=2, ask=True)))
    thread.start()
    posts = receiver.wait_for(3)
    assert posts[2]["title"].endswith("PAUSED"), posts
    assert "Waiting for approval: check before loading" in posts[2]["message"]
    run_id = posts[2]["message"].splitlines()[1].removeprefix("Run: ")
    assert CliRunner().invoke(main, ["runs", "approve", run_id]).exit_code == 0
    thread.join(60)
    assert done and done[0].state is S.COMPLETED
    assert receiver.wait_for(4)[3]["title"].endswith("COMPLETED")


def test_failures_are_mailed_through_a_real_smtp_server(history: str) -> None:
    from aiosmtpd.controller import Controller

    mails: list[str] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mails.append(envelope.content.decode("utf-8", "replace"))
            return "250 OK"

    port = closed_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:

        @flow(
            name="mailed",
            cluster="local-threads",
            notify=f"mailto://127.0.0.1:{port}?from=dagflow@example.com&to=ops@example.com"
            "&mode=insecure",
        )
        def mailed() -> int:
            return load(-5).result()

        run = mailed.run()
        assert run.state is S.FAILED
        deadline = time.monotonic() + 20
        while not mails and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        controller.stop()
    (mail,) = mails
    assert f"Subject: dagflow: flow mailed run {run.id[:12]} FAILED" in mail
    assert "To: ops@example.com" in mail
    assert "cannot load -5 rows" in mail and f"/runs/{run.id}" in mail


@pytest.mark.parametrize(
    ("notify", "message"),
    [
        ("not a url", "is not an Apprise URL"),
        (["json://ok.example/x", "nosuchscheme://host/x"], "is not a URL Apprise can send to"),
        ("json://", "is not an Apprise URL"),
        (Notifier, "takes Apprise URLs"),
        (3, "takes Apprise URLs"),
    ],
)
def test_a_malformed_url_is_refused_when_the_flow_is_defined(notify: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message) as caught:

        @flow(notify=notify)
        def bad() -> None:
            pass

    assert "flow 'bad': notify" in str(caught.value)


def test_a_notifier_names_known_states_and_hides_credentials() -> None:
    with pytest.raises(DefinitionError, match="on= names states among"):
        Notifier("json://host/x", on=["LATE_ISH"])
    notifier = Notifier("slack://T000/B000/very-secret-token", on="completed")
    assert notifier.on == frozenset({"COMPLETED"})
    assert "very-secret-token" not in repr(notifier)
    with pytest.raises(DefinitionError) as caught:
        Notifier("mailto://user:hunter2@mail.example.com x")
    assert "hunter2" not in str(caught.value)
