"""How task code reaches worker processes (the `local` cluster): by reference when the workers can
import it, by value for the file `dagflow run` loads; tracebacks name the user's file and line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import cloudpickle
import pytest

from dagflow.engine.shipping import dumps, shipped

pytestmark = pytest.mark.cluster

HELPERS = """
import threading
from dagflow import task

LOCK = threading.Lock()  # module state: cannot be pickled, must stay on the worker


@task
def locked(x: int) -> int:
    with LOCK:
        return x + 1


@task
def bad(x: int) -> int:
    doubled = x * 2
    raise ValueError(f"bad {doubled}")


class Scaler:
    def __init__(self, factor: int) -> None:
        self.factor = factor

    @task
    def scale(self, x: int) -> int:
        with LOCK:
            return x * self.factor
"""

FLOW = """
from dagflow import flow, task
from helpers import Scaler, bad, locked


@task
def local_bad(x: int) -> int:
    raise RuntimeError("failure in the flow file")


@flow
def shipped_flow(n: int = 1) -> int:
    a = locked(n).result()
    b = Scaler(10).scale(a).result()
    try:
        bad(a).result()
    except ValueError:
        pass
    return local_bad(b).result()
"""


def dagflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGFLOW_")}
    env["DAGFLOW_HOME"] = str(cwd / "home")
    return subprocess.run(
        [sys.executable, "-m", "dagflow", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_module_code_goes_by_reference_and_tracebacks_name_the_users_lines(
    tmp_path: Path,
) -> None:
    (tmp_path / "helpers.py").write_text(textwrap.dedent(HELPERS))
    (tmp_path / "flows.py").write_text(textwrap.dedent(FLOW))
    run = dagflow("run", "flows.py:shipped_flow", "--cluster", "local", cwd=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "RuntimeError: failure in the flow file" in run.stderr
    assert "cannot pickle" not in run.stdout + run.stderr

    listed = json.loads(dagflow("runs", "ls", "--json", cwd=tmp_path).stdout)
    shown = json.loads(dagflow("runs", "show", listed[0]["id"], "--json", cwd=tmp_path).stdout)
    tasks = {t["key"]: t for t in shown["tasks"]}
    assert tasks["locked[0]"]["state"] == "COMPLETED"
    assert tasks["scale[0]"]["state"] == "COMPLETED"  # a task on a method, `self` included

    helper_tb = tasks["bad[0]"]["traceback"]
    assert f'File "{tmp_path / "helpers.py"}", line 17, in bad' in helper_tb
    assert 'raise ValueError(f"bad {doubled}")' in helper_tb  # the source line is shown

    script_tb = tasks["local_bad[0]"]["traceback"]  # the flow file travels by value
    assert "<dynamic-code>" not in script_tb
    assert f'File "{tmp_path / "flows.py"}", line 8, in local_bad' in script_tb
    assert 'raise RuntimeError("failure in the flow file")' in script_tb


def test_by_value_code_keeps_its_file_name() -> None:
    def inner(x: int) -> int:
        return x

    data = dumps(shipped(inner, by_reference=False))
    rebuilt = cloudpickle.loads(data)
    assert rebuilt.__code__.co_filename == __file__
    assert rebuilt(3) == 3
