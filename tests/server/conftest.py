"""Fixtures for the server's tests: a real uvicorn server on 127.0.0.1 over a real database
(SQLite file or a throwaway PostgreSQL database) holding real runs, and headless Chromium.

- `live` serves `create_app(store, TOKEN)` from a thread (port 0), and stops it after the test.
- `recorded` runs real flows (`tests/server/flows.py`) on the in-process cluster into that
  database: a failed run with retried and failed map items, a completed one, a run with
  `<script>` parameters and log records at every level.
- `browser` is Debian's chromium-headless-shell driven by Playwright (no browser download); a
  machine without it FAILS the test with the command that installs it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dagflow.core.runs import FlowRun
from dagflow.store import Store, open_store
from tests.store.conftest import db_url, pg_url, sqlite_url  # noqa: F401 (fixtures)

TOKEN = "test-token-0123456789abcdef"
CHROMIUM = "/usr/lib/chromium/chromium-headless-shell"


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@dataclass
class Live:
    """A running server: its URL, the store it serves, and an authenticated HTTP client."""

    url: str
    store: Store
    http: httpx.Client

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)


@pytest.fixture
def server_store(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:  # noqa: F811
    """The test's database, also where flows run in the test record (DAGFLOW_DATABASE_URL)."""
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", db_url)
    store = open_store(db_url)
    yield store
    store.close()


@pytest.fixture
def live(server_store: Store) -> Iterator[Live]:
    from dagflow.server.app import create_app

    with (
        ServerThread(create_app(server_store, TOKEN)) as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as http,
    ):
        yield Live(server.url, server_store, http)


@dataclass
class Recorded:
    failed: FlowRun
    completed: FlowRun
    noisy: FlowRun


@pytest.fixture
def recorded(server_store: Store, threads_cluster: str) -> Recorded:
    """Real runs recorded in the test's database (run on the in-process cluster)."""
    from dagflow.runtime import close_stores
    from tests.server import flows

    failed = flows.mapped.run(n=6)
    completed = flows.squares.run(n=4)
    noisy = flows.noisy.run(label="<script>alert(1)</script>", note='<img src=x onerror="x()">')
    close_stores()  # the writer has committed everything the runs emitted
    return Recorded(failed, completed, noisy)


# ---------------------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"headless Chromium is not installed at {CHROMIUM}: "
            "run `apt-get install -y chromium-headless-shell` (as .ci/run does)"
        )
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium)
        yield instance
        instance.close()


@dataclass
class Page:
    """A signed-in page, and everything its console and network said."""

    page: Any
    console: list[str]
    requests: list[str]

    def csp_errors(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m or "pageerror" in m]


def on_dialog(found: Page, dialog: Any) -> None:
    """Confirmations (the cancel button's) are accepted; any other dialog is recorded."""
    found.console.append(f"dialog {dialog.type}: {dialog.message}")
    if dialog.type == "confirm":
        dialog.accept()
    else:
        dialog.dismiss()


@pytest.fixture
def page(browser: Any, live: Live, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    found = Page(pg, [], [])
    pg.on("console", lambda m: found.console.append(f"{m.type}: {m.text}"))
    pg.on("pageerror", lambda e: found.console.append(f"pageerror: {e}"))
    pg.on("request", lambda r: found.requests.append(r.url))
    pg.on("dialog", lambda d: on_dialog(found, d))
    pg.goto(f"{live.url}/login")
    pg.fill("#token", TOKEN)
    pg.click("#login-form button[type=submit]")
    pg.wait_for_url("**/runs")
    yield found
    context.close()
