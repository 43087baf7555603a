"""A resume asked through the database is done by the `dagflow serve` process serving the run's
deployment: a real serve process, a real flow that fails until a file exists, a real database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dagflow.core.states import StateType
from dagflow.store import open_store
from tests.scheduler.serving import ServeProcess, dagflow, environment, wait_until

S = StateType
pytestmark = [pytest.mark.slow, pytest.mark.cluster]

FLOWS = """
from pathlib import Path
from dagflow import flow, task

@task(persist_result=True)
def fetch(n: int) -> int:
    Path(__file__).with_name(f"fetched-{n}").open("a").write("x")
    return n * 10

@task
def check(value: int, marker: str) -> int:
    if not Path(marker).exists():
        raise RuntimeError(f"{marker} is missing")
    return value + 1

@flow
def flaky(n: int = 1, marker: str = "ready") -> int:
    return check(fetch(n), marker).result()
"""


@pytest.fixture
def serving(tmp_path: Path, sqlite_url: str) -> Iterator[tuple[ServeProcess, dict[str, str]]]:
    (tmp_path / "flows.py").write_text(FLOWS)
    env = environment(tmp_path / "home", sqlite_url)
    marker = str(tmp_path / "ready")
    proc = ServeProcess(
        ["flows.py:flaky", "--name", "manual", "-p", f"marker={marker}"], tmp_path, env
    )
    try:
        yield proc, env
    finally:
        proc.stop()


def test_serve_resumes_a_failed_run_someone_asked_to_resume(
    tmp_path: Path, sqlite_url: str, serving: tuple[ServeProcess, dict[str, str]]
) -> None:
    proc, env = serving
    proc.wait_for_log("serving 1 deployment(s)")
    made = dagflow(["deployments", "run", "flaky/manual", "-p", "n=4"], tmp_path, env)
    assert made.returncode == 0, made.stderr
    run_id = made.stdout.split()[1]
    store = open_store(sqlite_url)
    try:
        wait_until(lambda: store.run_state(run_id) is S.FAILED, 120, "the run to fail")
        (tmp_path / "ready").write_text("")
        assert store.request_resume(run_id)[:2] == (run_id, S.FAILED)
        wait_until(lambda: store.run_state(run_id) is S.COMPLETED, 120, "the resumed run")
        proc.wait_for_log(f"run {run_id[:12]} of flaky/manual: resume requested")
        run = store.get_flow_run(run_id)
        assert store.resume_requested(run_id) is None
        assert run.attempts == 2 and run.parameters["n"] == 4
        # the persisted result of `fetch` was reused: it ran once, in the first attempt
        assert (tmp_path / "fetched-4").read_text() == "x"
        flow_states = [h.to_state for h in run.history]
        assert flow_states.count(S.FAILED) == 1 and flow_states[-1] is S.COMPLETED
    finally:
        store.close()
