"""Shared fixtures: an isolated DAGFLOW_HOME per test session, in-process clusters."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Tests send Ctrl-C (SIGINT) to the processes they start. A suite started in the background
    by a non-interactive shell (`cmd &`, as a CI script may) inherits SIGINT *ignored*, and so
    would every process it starts: handle it here, so that children start with the default."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True, scope="session")
def dagflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep every test's run history away from the user's ~/.dagflow."""
    home = tmp_path_factory.mktemp("dagflow-home")
    old = os.environ.get("DAGFLOW_HOME")
    os.environ["DAGFLOW_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("DAGFLOW_HOME", None)
    else:
        os.environ["DAGFLOW_HOME"] = old


@pytest.fixture(autouse=True)
def _no_cluster_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests name their cluster explicitly; an outer DAGFLOW_CLUSTER must not leak in."""
    monkeypatch.delenv("DAGFLOW_CLUSTER", raising=False)


@pytest.fixture
def threads_cluster(monkeypatch: pytest.MonkeyPatch) -> str:
    """Run flows on the shared in-process cluster (workers are threads of this process)."""
    monkeypatch.setenv("DAGFLOW_CLUSTER", "local-threads")
    return "local-threads"


PG_SKIP_REASON = "DAGFLOW_TEST_POSTGRES_URL is not set"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Iterator[None]:
    """After the summary's other sections (just above the closing counts): say that PostgreSQL
    tests were skipped, why, and how to run them."""
    yield
    n = sum(
        1
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and PG_SKIP_REASON in str(report.longrepr[2])
    )
    if n:
        terminalreporter.write_line(
            f"PostgreSQL: {n} test{'s' if n > 1 else ''} skipped because {PG_SKIP_REASON}; "
            "to run them, export DAGFLOW_TEST_POSTGRES_URL=postgresql+psycopg://postgres@"
            "127.0.0.1:5432/test (a server where that user may create databases: each test makes "
            "and drops its own)",
            yellow=True,
        )
