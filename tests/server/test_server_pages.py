"""The pages in headless Chromium, against a live server and a database holding real runs.

What a user sees: a failed run reads FAILED with its failed tasks and their tracebacks; the
Gantt chart has one bar per attempt (what BokehJS drew is read back from the page's Bokeh
document); the log search finds a line; hostile text is shown as text; a live run fills in
without a reload; the cancel button asks and records the request. No page breaks its CSP or
talks to any origin but the server's.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dagflow.store import StoreWriter
from tests.server.conftest import TOKEN, Live, Page, Recorded
from tests.store.conftest import new_id, run_events

pytestmark = [
    pytest.mark.browser,
    pytest.mark.cluster,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

BARS = """name => {
  for (const doc of Bokeh.documents) {
    const r = doc.get_model_by_name(name);
    if (r) return r.data_source.data.row.length;
  }
  return -1;
}"""


def rendered(p: Any, chart: str) -> None:
    p.wait_for_selector(f"#{chart}[data-rendered=true]", timeout=20_000)


def clean(page: Page, live: Live) -> None:
    """Nothing broke the CSP, no script error, and every request went to the server."""
    assert page.csp_errors() == [], page.console
    assert not [m for m in page.console if m.startswith("dialog alert")], page.console
    foreign = [u for u in page.requests if not u.startswith(live.url)]
    assert foreign == []


def test_runs_page_shows_a_failed_run_as_failed(
    page: Page, live: Live, recorded: Recorded, tmp_path: Path
) -> None:
    p = page.page
    p.goto(f"{live.url}/runs")
    row = p.locator(f"tr[data-run='{recorded.failed.id}']")
    assert row.locator(".badge").inner_text() == "FAILED"
    assert "failed" in row.locator(".badge").get_attribute("class")
    assert row.locator(".count.failed").first.inner_text() == "2 failed"
    assert row.locator(".flow-name").inner_text() == "mapped"
    ok = p.locator(f"tr[data-run='{recorded.completed.id}']")
    assert ok.locator(".badge").inner_text() == "COMPLETED"
    assert ok.locator(".count.failed").count() == 0
    p.select_option("select[name=state]", "FAILED")
    p.click("#run-filters button")
    p.wait_for_url("**/runs?*state=FAILED*")
    assert p.locator("tr.run-row").count() == 1
    p.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    clean(page, live)


def test_run_page_failed_tasks_tracebacks_and_one_bar_per_attempt(
    page: Page, live: Live, recorded: Recorded, tmp_path: Path
) -> None:
    p = page.page
    run = live.store.get_flow_run(recorded.failed.id)
    p.goto(f"{live.url}/runs/{run.id}")
    assert p.locator("#run-state").inner_text() == "FAILED"
    failures = p.locator("details.failure")
    assert failures.count() == 3
    first = failures.first
    assert "ValueError" in first.inner_text() and "is broken" in first.inner_text()
    assert "Traceback (most recent call last)" in first.locator("pre.traceback").inner_text()
    rendered(p, "gantt")
    rendered(p, "graph")
    attempts = len(live.store.attempts(run.id, ["flaky", "total"]))
    retried = [t for t in run.task_runs.values() if t.attempts == 2]
    assert len(retried) == 2 and attempts == 4 + 2 * 2  # 4 items ran once, 2 twice
    assert p.evaluate(BARS, "attempts") == attempts
    assert p.evaluate(BARS, "groups") == 0  # a small map: no aggregated bar
    nodes = p.evaluate(
        "() => Bokeh.documents.map(d => d.get_model_by_name('nodes')).find(Boolean)"
        ".data_source.data.name"
    )
    assert sorted(nodes) == ["flaky", "total"]
    p.click("#tasks-panel a[data-state=FAILED]")
    p.wait_for_url("**state=FAILED*")
    states = p.locator("#task-table tr.task-row .badge").all_inner_texts()
    assert states == ["FAILED", "FAILED"]
    p.screenshot(path=str(tmp_path / "run.png"), full_page=True)
    clean(page, live)


def test_log_search_and_level_filter(page: Page, live: Live, recorded: Recorded) -> None:
    p = page.page
    p.goto(f"{live.url}/runs/{recorded.noisy.id}")
    rows = p.locator("#log-table tr.log-row")
    assert rows.count() >= 4
    p.fill("#log-search", "needle")
    p.click("#log-filters button")
    p.wait_for_url("**q=needle*")
    assert rows.count() == 1 and "needle in the haystack" in rows.first.inner_text()
    p.goto(f"{live.url}/runs/{recorded.noisy.id}")
    p.select_option("#log-level", "ERROR")
    p.click("#log-filters button")
    p.wait_for_url("**level=ERROR*")
    assert rows.count() >= 1
    assert set(p.locator("#log-table .log-level").all_inner_texts()) == {"ERROR"}
    clean(page, live)


def test_hostile_text_is_shown_as_text(page: Page, live: Live, recorded: Recorded) -> None:
    p = page.page
    p.goto(f"{live.url}/runs/{recorded.noisy.id}")
    params = p.locator("#parameters").inner_text()
    assert '"<script>alert(1)</script>"' in params
    assert "onerror" in params
    assert p.locator("#parameters script").count() == 0
    assert p.locator("img").count() == 0
    logs = p.locator("#log-table").inner_text()
    assert "<script>alert(1)</script>" in logs
    p.wait_for_timeout(300)
    clean(page, live)  # no alert dialog ever opened


def test_a_live_run_fills_in_without_a_reload(page: Page, live: Live, threads_cluster: str) -> None:
    from tests.server import flows

    p = page.page
    p.goto(f"{live.url}/runs")
    done: list[Any] = []
    runner = threading.Thread(target=lambda: done.append(flows.sleepy.run(n=3, seconds=2.0)))
    runner.start()
    try:
        p.wait_for_selector("tr.run-row .badge:text('RUNNING')", timeout=20_000)
        run_id = p.locator("tr.run-row").first.get_attribute("data-run")
        p.goto(f"{live.url}/runs/{run_id}")
        assert p.locator("#run-state").inner_text() in ("PENDING", "RUNNING")
        rendered(p, "gantt")
        p.wait_for_selector("#run-state:text('COMPLETED')", timeout=30_000)
        p.wait_for_selector("#gantt[data-live=false]", timeout=15_000)
        assert p.evaluate(BARS, "attempts") == 3
        assert p.locator("#task-table .badge").all_inner_texts() == ["COMPLETED"] * 3
    finally:
        runner.join(60)
    assert done and done[0].state.value == "COMPLETED"
    clean(page, live)


def test_cancel_button_records_the_request(page: Page, live: Live) -> None:
    run_id = new_id()
    writer = StoreWriter(live.store.url)
    writer.handle(run_events(run_id, 2, flow="held")[:-1])  # RUNNING; its driver elsewhere
    writer.close(30)
    p = page.page
    p.goto(f"{live.url}/runs/{run_id}")
    assert p.locator("#run-state").inner_text() == "RUNNING"
    p.click("#cancel")
    p.wait_for_selector("#run-state:text('CANCELLING')", timeout=10_000)
    assert any("dialog confirm: Cancel this run?" in m for m in page.console)
    assert live.store.run_state(run_id).value == "CANCELLING"
    clean(page, live)


def test_a_ten_thousand_task_run_is_aggregated(page: Page, live: Live) -> None:
    run_id = new_id()
    writer = StoreWriter(live.store.url)
    writer.handle(run_events(run_id, 10_000, flow="big", logs=False))
    writer.close(60)
    p = page.page
    start = time.monotonic()
    p.goto(f"{live.url}/runs/{run_id}")
    rendered(p, "gantt")
    rendered(p, "graph")
    took = time.monotonic() - start
    assert p.evaluate(BARS, "groups") == 1 and p.evaluate(BARS, "attempts") == 0
    assert "10000 completed" in p.locator("#run-header .facts").inner_text()
    assert p.locator("#task-table tr.task-row").count() == 100  # one page of the table
    assert took < 30, took
    clean(page, live)


def test_signing_in_from_the_printed_link(browser: Any, live: Live) -> None:
    context = browser.new_context()
    p = context.new_page()
    try:
        p.goto(f"{live.url}/runs")
        assert "Sign in" in p.content()
        p.goto(f"{live.url}/login#token={TOKEN}")
        p.wait_for_url("**/runs")
        assert p.locator("h1").inner_text() == "Runs"
        assert "token=" not in p.url
    finally:
        context.close()


def test_api_docs_render_from_local_files(page: Page, live: Live) -> None:
    p = page.page
    p.goto(f"{live.url}/api/v1/docs")
    p.wait_for_selector(".opblock-summary-path", timeout=20_000)
    paths = p.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/runs/{ref}/cancel" in [x.strip() for x in paths]
    clean(page, live)
