"""Every route but health and static assets needs the token; pages take a same-origin session."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import httpx
import pytest

from dagflow.errors import SettingsError
from dagflow.server.auth import COOKIE, TOKEN_FILE, load_token
from dagflow.settings import load as load_settings
from tests.server.conftest import TOKEN, Live

# any value fits every path parameter of the API (run refs are ids or prefixes)
FILLER = "0123456789abcdef"


def api_routes(live: Live) -> list[tuple[str, str]]:
    document = live.get("/api/v1/openapi.json").json()
    routes = []
    for path, methods in document["paths"].items():
        for method in methods:
            routes.append((method.upper(), re.sub(r"\{[^}]+\}", FILLER, path)))
    return routes


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_api_route_answers_401_without_the_token(live: Live) -> None:
    routes = api_routes(live)
    assert len(routes) >= 15, routes
    assert ("POST", f"/api/v1/runs/{FILLER}/cancel") in routes
    assert ("POST", f"/api/v1/runs/{FILLER}/resume") in routes
    for action in ("pause", "resume", "runs"):
        assert ("POST", f"/api/v1/deployments/{FILLER}/{action}") in routes
    assert ("GET", "/api/v1/deployments") in routes
    assert ("GET", f"/api/v1/deployments/{FILLER}") in routes
    checked = 0
    for method, path in routes:
        if path == "/api/v1/health" or path.startswith("/api/v1/webhooks/"):
            continue  # webhooks: signed by their own secret instead (test_webhooks.py)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            answer = httpx.request(method, live.url + path, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
        checked += 1
    assert checked == len(routes) - 2
    assert httpx.get(f"{live.url}/api/v1/openapi.json").status_code == 401
    assert httpx.get(f"{live.url}/api/v1/health").status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_every_page_needs_a_session_and_static_files_do_not(live: Live) -> None:
    from fastapi.routing import APIRoute

    from dagflow.server.pages import deployments, views

    open_pages = {"/", "/login", "/logout"}
    pages = [
        (method, re.sub(r"\{[^}]+\}", FILLER, route.path))
        for router in (views.router, deployments.router)
        for route in router.routes
        if isinstance(route, APIRoute) and route.path not in open_pages
        for method in route.methods
    ]
    assert ("GET", f"/runs/{FILLER}/charts/gantt") in pages and len(pages) >= 14, pages
    assert ("POST", f"/deployments/{FILLER}/run") in pages
    for method, path in pages:
        answer = httpx.request(method, live.url + path)
        assert answer.status_code == 401, (method, path)
    assert "Sign in" in httpx.get(f"{live.url}/runs").text
    for path in ("/assets/app.js", "/assets/app.css", "/bokeh/static/js/bokeh.min.js"):
        assert httpx.get(live.url + path).status_code == 200, path
    assert httpx.get(f"{live.url}/api/v1/docs/static/swagger-ui-bundle.js").status_code == 200


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_signing_in_sets_a_strict_httponly_session_that_needs_our_origin_to_post(
    live: Live,
) -> None:
    with httpx.Client(base_url=live.url) as browser:
        wrong = browser.post("/login", content="token=nope&next=/runs")
        assert wrong.status_code == 401 and "not this server" in wrong.text
        good = browser.post(
            "/login",
            content=f"token={TOKEN}&next=//evil.example/x",
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert good.status_code == 303 and good.headers["location"] == "/runs"
        cookie = good.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and TOKEN not in cookie
        assert browser.get("/runs").status_code == 200
        assert browser.get("/api/v1/runs").status_code == 200
        # a change authenticated by the cookie alone must come from this origin
        path = f"/api/v1/runs/{FILLER}/cancel"
        assert browser.post(path).status_code == 401
        assert browser.post(path, headers={"Origin": "http://evil.example"}).status_code == 401
        assert browser.post(path, headers={"Sec-Fetch-Site": "cross-site"}).status_code == 401
        same = browser.post(path, headers={"Origin": live.url})
        assert same.status_code == 404  # authenticated; that run does not exist
        assert browser.post("/logout").status_code == 303
        browser.cookies.delete(COOKIE)
        assert browser.get("/runs").status_code == 401


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_pages_send_a_content_security_policy(live: Live) -> None:
    with httpx.Client(base_url=live.url) as browser:
        browser.post("/login", content=f"token={TOKEN}")
        answer = browser.get("/runs")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in answer.text  # no inline script: every script has a src
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_token_file_is_made_once_with_mode_600(tmp_path: Path) -> None:
    settings = load_settings({"DAGFLOW_HOME": str(tmp_path)})
    first = load_token(settings)
    assert first.created and first.source == str(tmp_path / TOKEN_FILE)
    assert stat.S_IMODE((tmp_path / TOKEN_FILE).stat().st_mode) == 0o600
    again = load_token(settings)
    assert not again.created and again.value == first.value
    env = load_settings({"DAGFLOW_HOME": str(tmp_path), "DAGFLOW_API_TOKEN": "from-env"})
    assert load_token(env).value == "from-env" and load_token(env).source == "DAGFLOW_API_TOKEN"


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    settings = load_settings({"DAGFLOW_HOME": str(tmp_path)})
    load_token(settings)
    os.chmod(tmp_path / TOKEN_FILE, 0o644)
    with pytest.raises(SettingsError, match="chmod 600"):
        load_token(settings)
