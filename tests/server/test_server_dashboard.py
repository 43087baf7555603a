"""The `/dagflow` page of the Dask dashboard shows dagflow's states, read from the store."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dagflow import clusters
from dagflow.runtime import run_flow

pytestmark = [pytest.mark.cluster, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def cluster(tmp_path: Path, server_store: Any) -> Iterator[tuple[str, str]]:
    """A local cluster with its dashboard on 127.0.0.1, recording into the test's database."""
    path = tmp_path / "dash.yaml"
    path.write_text(
        "kind: local\noptions:\n  n_workers: 1\n  processes: false\n"
        f"  dashboard_address: 127.0.0.1:{free_port()}\n"
    )
    try:
        handle = clusters.get_cluster(str(path))
        assert handle.dashboard_link is not None
        yield str(path), handle.dashboard_link.rsplit("/status", 1)[0]
    finally:
        clusters.close(str(path))


def get(url: str) -> tuple[int, dict[str, str], str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, dict(response.headers), response.read().decode()


def test_a_failed_run_is_failed_on_the_dagflow_page(
    cluster: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.server import flows

    profile, base = cluster
    monkeypatch.setenv("DAGFLOW_API_URL", "http://127.0.0.1:4200")
    failed = run_flow(flows.mapped, {"n": 6}, cluster=profile)
    done = run_flow(flows.noisy, {"label": "<script>alert(1)</script>"}, cluster=profile)
    assert failed.state.value == "FAILED" and done.state.value == "COMPLETED"
    status, headers, page = get(f"{base}/dagflow")
    assert status == 200
    assert "script-src 'none'" in headers["Content-Security-Policy"]
    row = page.split(f"data-run='{failed.id}'")[1].split("</tr>")[0]
    assert "FAILED" in row and "2 failed" in row and "1 upstream_failed" in row
    assert f"href='http://127.0.0.1:4200/runs/{failed.id}'" in row
    assert "<script" not in page
    _, _, body = get(f"{base}/dagflow/api/runs?run={failed.id}")
    (found,) = json.loads(body)["runs"]
    assert found["state"] == "FAILED" and found["failed_tasks"] == 3
    assert found["task_counts"] == {"COMPLETED": 4, "FAILED": 2, "UPSTREAM_FAILED": 1}
    assert found["done"] == found["tasks"]  # what Dask alone would say: all done


@pytest.mark.browser
def test_the_dagflow_page_keeps_its_csp_in_chromium(cluster: tuple[str, str], browser: Any) -> None:
    from tests.server import flows

    profile, base = cluster
    run = run_flow(flows.mapped, {"n": 3}, cluster=profile)
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    try:
        page.goto(f"{base}/dagflow")
        badge = page.locator(f"tr[data-run='{run.id}'] .b")
        assert badge.inner_text() == "FAILED"
        assert "failed" in (badge.get_attribute("class") or "")
    finally:
        context.close()
    assert not [m for m in console if "Content Security Policy" in m], console
