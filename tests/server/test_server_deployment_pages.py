"""The Deployments pages in headless Chromium, against a live server, a real database and a real
`dagflow serve` process serving the deployment (started here, stopped by pid).

What a user does: finds the deployment with its schedule in words and its next ticks, pauses
and resumes it, submits the Run form with a bad parameter (the error shows beside the field, the
value typed is kept) and then a good one, and watches the new run reach COMPLETED on the Runs
page without reloading; a run that failed is resumed from its page and completes.

`DAGFLOW_SCREENSHOTS=docs/images` saves the docs' screenshot of the Run form while it shows an
error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scheduler.serving import ServeProcess, environment
from tests.server.conftest import Live, Page
from tests.server.test_server_pages import clean

pytestmark = [
    pytest.mark.browser,
    pytest.mark.cluster,
    pytest.mark.slow,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

FLOWS = """
from pathlib import Path
from dagflow import flow, task, get_run_logger

@task
def count(day: str, rows: int) -> int:
    get_run_logger().info("counting %d rows of %s", rows, day)
    return rows

@task
def check(n: int, marker: str) -> int:
    if n > 5 and not Path(marker).exists():
        raise RuntimeError(f"{n} rows need {marker}")
    return n

@flow
def report(day: str, rows: int = 2, marker: str = "") -> int:
    '''Counts the day's rows.'''
    return check(count(day, rows), marker).result()
"""


@pytest.fixture
def serving(tmp_path: Path, db_url: str, live: Live) -> Iterator[ServeProcess]:
    (tmp_path / "reports.py").write_text(FLOWS)
    marker = tmp_path / "allowed"
    args = ["reports.py:report", "--name", "daily", "--cron", "*/30 * * * *"]
    args += ["-p", "day=mon", "-p", f"marker={marker}"]
    proc = ServeProcess(args, tmp_path, environment(tmp_path / "home", db_url))
    try:
        proc.wait_for_log("serving 1 deployment(s)")
        yield proc
    finally:
        proc.stop()


def test_run_form_bad_then_good_parameter_and_the_run_completes(
    page: Page, live: Live, serving: ServeProcess, tmp_path: Path
) -> None:
    p = page.page
    p.goto(f"{live.url}/deployments")
    row = p.locator("tr[data-deployment='report/daily']")
    assert row.locator(".schedule").inner_text() == "Every 30 minutes (UTC)"
    assert row.locator(".next-ticks time").count() == 3
    assert row.locator(".deployment-state").inner_text() == "ACTIVE"
    row.locator("button.pause").click()  # asks first; the table refreshes itself
    p.wait_for_selector("tr[data-deployment='report/daily'] .deployment-state:text('PAUSED')")
    assert live.store.deployment("report/daily").paused
    assert "paused" in p.locator("#action-result").inner_text()
    p.locator("tr[data-deployment='report/daily'] button.resume").click()
    p.wait_for_selector("tr[data-deployment='report/daily'] .deployment-state:text('ACTIVE')")
    assert not live.store.deployment("report/daily").paused

    p.locator("tr[data-deployment='report/daily'] a.run-link").click()
    p.wait_for_url("**/deployments/report/daily#run")
    assert p.locator("#schedules .schedule").inner_text().startswith("Every 30 minutes (UTC)")
    assert p.locator("label[for=param-rows] .type").inner_text() == "integer"
    assert p.locator("#param-day").get_attribute("placeholder") == "deployment default: mon"
    p.fill("#param-rows", "lots")
    p.click("#run-submit")
    p.wait_for_selector(".field.invalid[data-field=rows]")
    error = p.locator("#param-rows-error").inner_text()
    assert "valid integer" in error
    assert p.locator("#param-rows").input_value() == "lots"  # what was typed is kept
    assert p.locator(".field.invalid").count() == 1
    assert "'report/daily': parameters: rows:" in p.locator("#form-refused").inner_text()
    assert [r for r in live.store.list_flow_runs() if r.deployment] == []  # nothing created
    if os.environ.get("DAGFLOW_SCREENSHOTS"):  # docs/images/deployment-page.png is taken here
        p.set_viewport_size({"width": 1100, "height": 800})
        shot = Path(os.environ["DAGFLOW_SCREENSHOTS"]) / "deployment-page.png"
        p.screenshot(path=str(shot), full_page=True)

    p.fill("#param-rows", "3")
    p.click("#run-submit")
    p.wait_for_url(f"{live.url}/runs/*")
    run_id = p.url.rsplit("/", 1)[1].partition("#")[0]
    assert live.store.get_flow_run(run_id).parameters["rows"] == 3
    p.goto(f"{live.url}/runs")
    badge = f"tr[data-run='{run_id}'] .badge"
    p.wait_for_selector(f"{badge}:text('COMPLETED')", timeout=120_000)  # refreshed, no reload
    assert p.locator(f"tr[data-run='{run_id}'] .deployment-name").inner_text() == "report/daily"
    p.screenshot(path=str(tmp_path / "runs.png"), full_page=True)
    clean(page, live)


def test_a_failed_run_is_resumed_from_its_page(
    page: Page, live: Live, serving: ServeProcess, tmp_path: Path
) -> None:
    p = page.page
    p.goto(f"{live.url}/deployments/report/daily")
    p.fill("#param-rows", "9")  # more than 5 rows need the marker file: this run fails
    p.click("#run-submit")
    p.wait_for_url(f"{live.url}/runs/*")
    run_id = p.url.rsplit("/", 1)[1].partition("#")[0]
    p.wait_for_selector("#run-state:text('FAILED')", timeout=120_000)
    assert "9 rows need" in p.locator("#run-error, details.failure").first.inner_text()
    (tmp_path / "allowed").write_text("")
    p.click("#resume")
    p.wait_for_selector("#run-state:text('COMPLETED')", timeout=120_000)
    assert any("dialog confirm: Resume this run?" in m for m in page.console)
    run = live.store.get_flow_run(run_id)
    assert run.state.value == "COMPLETED" and run.attempts == 2
    serving.wait_for_log(f"run {run_id[:12]} of report/daily: resume requested")
    clean(page, live)
