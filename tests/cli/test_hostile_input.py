"""Input meant to break things gets one clear line, and stored text never drives the terminal.

The real `dagflow` command in a subprocess (what a user's terminal receives), on the in-process
cluster and, for what only a network shows (pickling), on worker processes over TCP.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DAGFLOW = shutil.which("dagflow", path=os.path.dirname(sys.executable))
ESC = "\x1b"

FLOWS = textwrap.dedent(
    """
    import threading
    from dagflow import flow, task, get_run_logger

    @task
    def echo(text: str) -> str:
        get_run_logger().info("got %s", text)
        return text

    @flow(cluster="local-threads")
    def shout(text: str = "hi", f: float = 1.0) -> str:
        return echo(text).result()

    @task
    def use(thing: object) -> str:
        return "used"

    @flow(cluster="local")
    def unpicklable() -> str:
        return use(threading.Lock()).result()
    """
)


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.py"
    path.write_text(FLOWS)
    return path


def dagflow(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    assert DAGFLOW is not None
    env = {**os.environ, "DAGFLOW_HOME": str(home), "COLUMNS": "200"}
    env.pop("DAGFLOW_CLUSTER", None)
    env.pop("DAGFLOW_DATABASE_URL", None)
    return subprocess.run(
        [DAGFLOW, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--params-json", "[" * 5000 + "]" * 5000], "nested 5000 deep"),
        (["--params-json", '{"f": NaN}'], "NaN is not a JSON number"),
        (["--param", "text=" + "[" * 5000], "text"),
    ],
)
def test_hostile_parameters_are_one_line(
    flows: Path, tmp_path: Path, args: list[str], words: str
) -> None:
    proc = dagflow("run", f"{flows}:shout", *args, cwd=tmp_path, home=tmp_path / "home")
    if words == "text":  # a deep text is just text for a str parameter: the run goes on
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_non_finite_parameter_keeps_every_json_output_valid(flows: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = dagflow("run", f"{flows}:shout", "--param", "f=nan", cwd=tmp_path, home=home)
    assert proc.returncode == 0, proc.stderr
    listing = dagflow("runs", "ls", "--json", cwd=tmp_path, home=home)
    runs = json.loads(listing.stdout, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert runs[0]["parameters"]["f"] == {"$float": "nan"}


def test_escape_sequences_in_stored_text_reach_the_terminal_escaped(
    flows: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    evil = f"{ESC}]0;PWNED\x07"
    proc = dagflow("run", f"{flows}:shout", "--param", f"text={evil}", cwd=tmp_path, home=home)
    assert proc.returncode == 0, proc.stderr
    assert ESC not in proc.stdout + proc.stderr and "\x07" not in proc.stdout + proc.stderr
    assert "\\x1b]0;PWNED\\x07" in proc.stdout + proc.stderr  # shown, as text
    run_id = json.loads(dagflow("runs", "ls", "--json", cwd=tmp_path, home=home).stdout)[0]["id"]
    for args in (["logs", run_id], ["runs", "show", run_id]):
        shown = dagflow(*args, cwd=tmp_path, home=home)
        assert shown.returncode == 0, shown.stderr
        assert ESC not in shown.stdout and "\x07" not in shown.stdout


@pytest.mark.cluster
def test_an_unpicklable_argument_on_a_tcp_cluster_is_one_line(flows: Path, tmp_path: Path) -> None:
    proc = dagflow("run", f"{flows}:unpicklable", cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "Failed to serialize" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "task 'use'" in errors[0] and "lock" in errors[0], proc.stderr
