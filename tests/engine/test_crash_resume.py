"""A driver killed with SIGKILL mid-run: the run reads CRASHED, and `dagflow resume` finishes it
without re-running the tasks whose results were persisted (proved by marker files tasks write)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FLOW_FILE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from dagflow import flow, task

    MARKERS = Path(sys.argv[2]) if len(sys.argv) > 2 else None

    @task(persist_result=True)
    def work(i: int, markers: str) -> int:
        Path(markers, f"ran-{i}-{time.time_ns()}").touch()
        time.sleep(0.4)
        return i * i

    @task
    def total(values: list) -> int:
        return sum(values)

    @flow(cluster="local-threads")
    def crashy(n: int, markers: str) -> int:
        return total(work.map(range(n), markers=[markers] * n))

    if __name__ == "__main__":
        run = crashy.run(n=int(sys.argv[1]), markers=sys.argv[2])
        print("STATE", run.state)
    """
)


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DAGFLOW_HOME=str(home),
        DAGFLOW_HEARTBEAT_SECONDS="0.3",
        DAGFLOW_CRASH_AFTER_SECONDS="2",
        PYTHONUNBUFFERED="1",
    )
    env.pop("DAGFLOW_CLUSTER", None)
    return env


def _python(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=180,
    )  # fmt: skip


def test_killed_driver_reads_crashed_and_resume_skips_finished_tasks(tmp_path: Path) -> None:
    home = tmp_path / "home"
    markers = tmp_path / "markers"
    markers.mkdir()
    (tmp_path / "crashy.py").write_text(FLOW_FILE)
    env = _env(home)
    proc = subprocess.Popen(
        [sys.executable, "crashy.py", "12", str(markers)], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while len(list(markers.iterdir())) < 4 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        time.sleep(0.5)  # let the writer record the finished tasks
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    ran_before = {p.name.split("-")[1] for p in markers.iterdir()}
    assert 0 < len(ran_before) < 12

    time.sleep(2.5)  # the heartbeat goes stale
    read = _python(
        "import dagflow\n"
        "(listed,) = dagflow.list_flow_runs(flow='crashy')\n"
        "run = dagflow.get_flow_run(listed.id)\n"
        "print(run.id, run.state)\n"
        "print([h.message for h in run.history][-1])\n"
        "done = [tr.key for tr in run.task_runs.values() if tr.state.value == 'COMPLETED' "
        "and tr.result_location]\n"
        "print(len(done))\n",
        tmp_path,
        env,
    )
    assert read.returncode == 0, read.stderr
    run_id, state = read.stdout.splitlines()[0].split()
    assert state == "CRASHED"
    assert "heartbeat" in read.stdout.splitlines()[1]
    completed_before = int(read.stdout.splitlines()[2])
    assert completed_before >= 1

    before = {p.name for p in markers.iterdir()}
    dagflow = shutil.which("dagflow", path=os.path.dirname(sys.executable))
    assert dagflow is not None
    resumed = subprocess.run(
        [dagflow, "resume", run_id[:10]], cwd=tmp_path / "markers", env=env,
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"run {run_id[:12]} COMPLETED" in resumed.stdout
    assert f"result: {sum(i * i for i in range(12))}" in resumed.stdout
    new_markers = {p.name for p in markers.iterdir()} - before
    rerun = {name.split("-")[1] for name in new_markers}
    assert len(rerun) == 12 - completed_before, "only tasks without a persisted result re-run"
