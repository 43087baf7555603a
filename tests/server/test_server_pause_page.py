"""The approval page: from a paused run's page to a form built from the input's schema; a
refused input is shown and the run stays paused; an approval goes back to the run, which ends
with the typed input. Real server, real Chromium, a real run."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydantic import BaseModel, Field

import dagflow
from dagflow import StateType, flow, task
from dagflow.core.runs import FlowRun
from tests.config.test_pause import wait_paused
from tests.server.conftest import Live, Page

S = StateType
pytestmark = [
    pytest.mark.browser,
    pytest.mark.cluster,
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]


class Release(BaseModel):
    rows: int = Field(description="how many rows to publish")
    channel: str = "prod"
    dry_run: bool = False


@task
def count() -> int:
    return 40


@flow(cluster="local-threads")
def publish() -> str:
    found = count().result()
    answer = dagflow.pause("<b>check</b> the counts", timeout=120, input=Release)
    return f"{min(found, answer.rows)} rows to {answer.channel} (dry run: {answer.dry_run})"


def test_approving_from_the_page_with_a_typed_input(
    live: Live, page: Page, threads_cluster: str
) -> None:
    done: list[FlowRun] = []
    thread = threading.Thread(target=lambda: done.append(publish.run()), daemon=True)
    thread.start()
    run_id = wait_paused("publish")
    pg: Any = page.page
    pg.goto(f"{live.url}/runs/{run_id}")
    pg.click("#approve-link")
    pg.wait_for_url(f"**/runs/{run_id}/approve")
    assert pg.inner_text("#pause-reason") == "<b>check</b> the counts"  # shown as text
    assert pg.input_value("#field-channel") == "prod"
    pg.fill("#field-rows", "many")
    pg.click("#approve")
    pg.wait_for_selector("#approval-result.error")
    assert "rows: Input should be a valid integer" in pg.inner_text("#approval-result")
    assert live.store.run_state(run_id) is S.PAUSED  # refused: still paused

    pg.fill("#field-rows", "25")
    pg.check("#field-dry_run")
    pg.click("#approve")
    pg.wait_for_url(f"**/runs/{run_id}")
    thread.join(60)
    (run,) = done
    assert run.state is S.COMPLETED, run.error
    assert run.result() == "25 rows to prod (dry run: True)"
    assert page.csp_errors() == []
    pg.goto(f"{live.url}/runs/{run_id}/approve")
    assert pg.inner_text("#not-open") == "This run is not waiting for an answer."
