"""Pause for approval: a run PAUSED in its body, answered from the CLI and the API (typed input
validated by the flow's model, refusals named, the run still paused), rejected, timed out, and
a driver killed while paused: CRASHED, then resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel

import dagflow
from dagflow import StateType, flow, task
from dagflow.cli import main
from dagflow.core.runs import FlowRun
from dagflow.errors import DefinitionError
from tests.server.conftest import Live

S = StateType
pytestmark = pytest.mark.cluster


class Approval(BaseModel):
    rows: int
    note: str = ""


class Optional(BaseModel):
    rows: int = 5


@task
def double(x: int) -> int:
    return 2 * x


@flow(cluster="local-threads")
def gated(n: int) -> int:
    first = double(n).result()
    answer = dagflow.pause("check the numbers", timeout=60, input=Approval)
    return first + answer.rows


@flow(cluster="local-threads", retries=1)
def plain_gate() -> str:
    dagflow.pause("go?", timeout=60)
    return "went"


@flow(cluster="local-threads")
def short_gate(on_timeout: str) -> int:
    answer = dagflow.pause("quick", timeout=1, input=Optional, on_timeout=on_timeout)  # type: ignore[arg-type]
    return answer.rows


class Background:
    """A flow run on a thread of this process (its driver), and its id once it is recorded."""

    def __init__(self, start: Callable[[], FlowRun]) -> None:
        self.run: FlowRun | None = None
        self.thread = threading.Thread(target=self._go, args=(start,), daemon=True)
        self.thread.start()

    def _go(self, start: Callable[[], FlowRun]) -> None:
        self.run = start()

    def finished(self, timeout: float = 60) -> FlowRun:
        self.thread.join(timeout)
        assert self.run is not None, "the run did not end"
        return self.run


def wait_paused(flow_name: str, timeout: float = 60) -> str:
    from dagflow.runtime import default_store

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = default_store().list_runs(flow_name, S.PAUSED, 5)
        if runs:
            return runs[0].run.id
        time.sleep(0.1)
    raise AssertionError(f"no run of {flow_name} paused within {timeout}s")


@pytest.fixture
def history(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", sqlite_url)
    yield sqlite_url
    from dagflow.runtime import close_stores

    close_stores()


def test_approved_from_the_cli_and_the_api_with_typed_input(
    history: str, live: Live, threads_cluster: str
) -> None:
    from dagflow.runtime import default_store

    bg = Background(lambda: gated.run(n=4))
    run_id = wait_paused("gated")
    cli = CliRunner()
    refused = cli.invoke(main, ["runs", "approve", run_id[:10], "--input", '{"rows": "many"}'])
    assert refused.exit_code == 2, refused.output
    assert "input refused: rows: Input should be a valid integer" in refused.output
    assert "stays paused" in refused.output
    assert default_store().run_state(run_id) is S.PAUSED
    bad_json = cli.invoke(main, ["runs", "approve", run_id, "--input", "{rows"])
    assert bad_json.exit_code == 2 and "--input is not JSON" in bad_json.output

    shown = live.get(f"/api/v1/runs/{run_id}/pause").json()
    assert shown["status"] == "waiting" and shown["reason"] == "check the numbers"
    assert shown["input_schema"]["required"] == ["rows"]
    assert "rows" in shown["error"]  # the last refusal, kept for whoever looks next
    missing = live.http.post(f"/api/v1/runs/{run_id}/approve", json={"input": {"note": "x"}})
    assert missing.status_code == 422, missing.text
    assert "rows: Field required" in missing.text
    approved = live.http.post(
        f"/api/v1/runs/{run_id}/approve", json={"input": {"rows": 10, "note": "ok"}}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    run = bg.finished()
    assert run.state is S.COMPLETED, run.error
    assert run.result() == 18
    states = [t.to_state for t in run.history]
    assert states[:4] == [S.PENDING, S.RUNNING, S.PAUSED, S.RUNNING] and states[-1] is S.COMPLETED
    again = cli.invoke(main, ["runs", "approve", run_id])
    assert again.exit_code == 2 and "is COMPLETED, not paused for approval" in again.output
    assert live.http.post(f"/api/v1/runs/{run_id}/reject", json={}).status_code == 409


def test_rejected_runs_fail_and_are_not_retried(history: str, threads_cluster: str) -> None:
    bg = Background(plain_gate.run)
    run_id = wait_paused("plain_gate")
    out = CliRunner().invoke(main, ["runs", "reject", run_id, "--reason", "numbers look off"])
    assert out.exit_code == 0 and out.output == f"flow run {run_id} rejected\n"
    run = bg.finished()
    assert run.state is S.FAILED
    assert run.attempts == 1  # retries=1, but a rejection is final
    assert "rejected by" in (run.error or "") and "numbers look off" in (run.error or "")


def test_a_pause_nobody_answers_fails_or_goes_on(history: str, threads_cluster: str) -> None:
    failed = short_gate.run(on_timeout="fail")
    assert failed.state is S.FAILED
    assert "not approved within 1s of pausing (quick)" in (failed.error or "")
    went_on = short_gate.run(on_timeout="approve")
    assert went_on.state is S.COMPLETED, went_on.error
    assert went_on.result() == 5


def test_bad_pause_arguments_are_refused_where_they_are_given() -> None:
    with pytest.raises(DefinitionError, match="works in a flow's body"):
        dagflow.pause("outside")

    @flow(cluster="local-threads")
    def wrong(kind: str) -> None:
        args: dict[str, Any] = {
            "model": {"input": dict},
            "timeout": {"timeout": -1},
            "on_timeout": {"on_timeout": "maybe"},
            "required": {"input": Approval, "on_timeout": "approve"},
        }[kind]
        dagflow.pause("x", **args)

    for kind, message in (
        ("model", "takes a pydantic model class"),
        ("timeout", "must be seconds > 0"),
        ("on_timeout", "is 'fail' or 'approve'"),
        ("required", "Approval has required fields"),
    ):
        run = wrong.run(kind=kind)
        assert run.state is S.FAILED and message in (run.error or ""), run.error


# ---------------------------------------------------------------------------- a driver dies

SCRIPT = """
import dagflow
from dagflow import flow, task

@task
def one() -> int:
    return 1

@flow(cluster="local-threads")
def held() -> int:
    value = one().result()
    dagflow.pause("hold on", timeout=120)
    return value + 1
"""


@pytest.mark.slow
def test_a_driver_killed_while_paused_leaves_a_crashed_run_that_resumes(
    tmp_path: Path, history: str
) -> None:
    script = tmp_path / "held.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {
        **os.environ,
        "DAGFLOW_HEARTBEAT_SECONDS": "0.5",
        "DAGFLOW_CRASH_AFTER_SECONDS": "3",
        "DAGFLOW_DATABASE_URL": history,
    }
    command = [sys.executable, "-m", "dagflow", "run", f"{script}:held"]
    driver = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path
    )
    try:
        run_id = wait_paused("held")
        driver.send_signal(signal.SIGKILL)
        driver.wait(30)
    finally:
        if driver.poll() is None:
            driver.kill()
    from dagflow.runtime import close_stores, default_store

    close_stores()
    os.environ["DAGFLOW_CRASH_AFTER_SECONDS"] = "3"
    try:
        deadline = time.monotonic() + 30
        while default_store().run_state(run_id) is not S.CRASHED:
            assert time.monotonic() < deadline, default_store().run_state(run_id)
            time.sleep(0.5)
    finally:
        del os.environ["DAGFLOW_CRASH_AFTER_SECONDS"]
        close_stores()
    refused = CliRunner().invoke(main, ["runs", "approve", run_id])
    assert refused.exit_code == 2 and "CRASHED, not paused" in refused.output

    resumed = subprocess.Popen(
        [sys.executable, "-m", "dagflow", "resume", run_id],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while default_store().run_state(run_id) is not S.PAUSED:
            assert time.monotonic() < deadline and resumed.poll() is None
            time.sleep(0.2)
        approved = CliRunner().invoke(main, ["runs", "approve", run_id])
        assert approved.exit_code == 0, approved.output
        output, _ = resumed.communicate(timeout=60)
    finally:
        if resumed.poll() is None:
            resumed.kill()
    assert resumed.returncode == 0, output
    close_stores()
    assert default_store().run_state(run_id) is S.COMPLETED
