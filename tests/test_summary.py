"""The test run's summary says when PostgreSQL tests were skipped, why, and how to run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_skipped_postgres_tests_are_explained_at_the_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGFLOW_TEST_POSTGRES_URL"}
    test = "tests/store/test_database.py::test_fresh_database_is_created_at_head_with_every_table"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp",
         str(tmp_path / "t"), test],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    *_, note, counts = proc.stdout.strip().splitlines()  # just above pytest's closing counts
    assert "1 skipped in" in counts, proc.stdout
    assert note.startswith("PostgreSQL: 1 test skipped because DAGFLOW_TEST_POSTGRES_URL is not")
    assert "export DAGFLOW_TEST_POSTGRES_URL=postgresql+psycopg://" in note
