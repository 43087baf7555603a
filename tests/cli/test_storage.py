"""A result storage that cannot be written: one clear line from `dagflow run`, exit code 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster

FLOW = textwrap.dedent(
    """
    from dagflow import flow, task

    @task(persist_result=True)
    def kept() -> int:
        return 1

    @flow
    def keeps() -> int:
        return kept()
    """
)


def test_unwritable_results_url_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "keeps.py").write_text(FLOW)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    dagflow = shutil.which("dagflow", path=os.path.dirname(sys.executable))
    assert dagflow is not None
    env = {
        **os.environ,
        "DAGFLOW_HOME": str(tmp_path / "home"),
        "DAGFLOW_RESULTS_URL": (blocker / "results").as_uri(),
    }
    done = subprocess.run(
        [dagflow, "run", "keeps.py:keeps", "--cluster", "local-threads"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1
    assert "cannot be written" in errors[0]
    assert str(blocker) in errors[0]
    assert "Traceback" not in done.stderr
