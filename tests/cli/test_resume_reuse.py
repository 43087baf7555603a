"""`dagflow resume` reuses a persisted result only for the same work, says what it reused and what
it ran again, and continues attempt numbers (and the retry budget) across a killed driver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

V1 = """
from pathlib import Path
from dagflow import flow, task


@task(persist_result=True)
def add(x: int, y: int) -> int:
    return x + y


@task(persist_result=True)
def double(v: int) -> int:
    return 2 * v


@task
def check(s: int, d: int, gate: str) -> int:
    if not Path(gate).exists():
        raise RuntimeError("the gate is closed")
    return s


@flow(cluster="local-threads")
def sums(x: int = 1, y: int = 10, gate: str = "gate") -> int:
    s = add(x, y)
    return check(s, double(x), gate).result()
"""

V2 = V1.replace("s = add(x, y)", "s = add(x, x)")  # the same task, called with other inputs

RETRIED = """
import sys, time
from dagflow import flow, task


@task(retries=3, retry_delay=30)
def flaky(gate: str) -> str:
    from pathlib import Path
    if not Path(gate).exists():
        raise ConnectionError("the service is down")
    return "up"


@flow(cluster="local-threads")
def retried(gate: str = "gate") -> str:
    return flaky(gate).result()


if __name__ == "__main__":
    retried(gate=sys.argv[1])
"""


def dagflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dagflow", *args],
        cwd=cwd,
        env=environment(cwd),
        capture_output=True,
        text=True,
        timeout=240,
    )


def environment(cwd: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env.update(
        DAGFLOW_HOME=str(cwd / "home"),
        DAGFLOW_HEARTBEAT_SECONDS="0.3",
        DAGFLOW_CRASH_AFTER_SECONDS="2",
    )
    return env


def last_run(cwd: Path) -> dict:  # type: ignore[type-arg]
    listed = json.loads(dagflow("runs", "ls", "--json", cwd=cwd).stdout)
    shown = dagflow("runs", "show", listed[0]["id"], "--json", cwd=cwd)
    return json.loads(shown.stdout)  # type: ignore[no-any-return]


def test_resume_after_the_code_changed_reruns_what_changed_and_says_so(tmp_path: Path) -> None:
    flows = tmp_path / "flows.py"
    flows.write_text(textwrap.dedent(V1))
    first = dagflow("run", "flows.py:sums", "-p", f"gate={tmp_path / 'gate'}", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    run_id = last_run(tmp_path)["id"]

    flows.write_text(textwrap.dedent(V2))
    (tmp_path / "gate").touch()
    resumed = dagflow("resume", run_id[:12], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "result: 2" in resumed.stdout  # add(1, 1), as a fresh run gives, not add(1, 10)
    assert "reused 1 task result" in resumed.stdout  # double(1): the same work
    assert "re-ran 1 whose code or inputs changed (add[0])" in resumed.stdout
    tasks = {t["key"]: t for t in last_run(tmp_path)["tasks"]}
    assert tasks["add[0]"]["state"] == "COMPLETED"
    assert tasks["double[0]"]["state"] == "CACHED"

    forced = tmp_path / "forced"
    forced.mkdir()
    (forced / "flows.py").write_text(textwrap.dedent(V1))
    assert dagflow("run", "flows.py:sums", "-p", "gate=nowhere", cwd=forced).returncode == 1
    forced_id = last_run(forced)["id"]
    (forced / "flows.py").write_text(textwrap.dedent(V2).replace('"gate"', '"nowhere"'))
    (forced / "nowhere").touch()
    again = dagflow("resume", forced_id, "--force", cwd=forced)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "result: 11" in again.stdout  # --force reuses by key, whatever changed


def test_attempts_continue_after_the_driver_is_killed_during_a_retry_delay(
    tmp_path: Path,
) -> None:
    (tmp_path / "retried.py").write_text(textwrap.dedent(RETRIED))
    gate = tmp_path / "gate"
    proc = subprocess.Popen(
        [sys.executable, "retried.py", str(gate)],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the first attempt failed: now in its retry delay
            listed = dagflow("runs", "ls", "--json", cwd=tmp_path)
            runs = json.loads(listed.stdout) if listed.returncode == 0 else []
            if runs and runs[0]["task_counts"].get("RETRYING"):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the task never reached its retry delay")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    time.sleep(2.5)  # older than DAGFLOW_CRASH_AFTER_SECONDS: the run reads CRASHED
    gate.touch()
    resumed = dagflow("resume", runs[0]["id"], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    task = dagflow("runs", "show", runs[0]["id"], "--task", "flaky[0]", "--json", cwd=tmp_path)
    history = json.loads(task.stdout)["history"]
    attempts = [h["attempt"] for h in history if h["to"] == "RUNNING"]
    assert attempts == [2], history  # the attempt after the resume is the second, not 1 again
    assert json.loads(task.stdout)["attempts"] == 2
