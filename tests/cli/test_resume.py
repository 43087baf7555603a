"""`dagflow resume`: bad run references and runs that cannot be resumed are one line, exit 2."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dagflow import flow, task
from dagflow.cli import main


@task
def one() -> int:
    return 1


@flow(cluster="local-threads")
def finished() -> int:
    return one()


def test_unknown_run_is_one_line_exit_2() -> None:
    result = CliRunner().invoke(main, ["resume", "no-such-run"])
    assert result.exit_code == 2
    assert "no flow run with id 'no-such-run'" in result.output
    assert "Traceback" not in result.output


@pytest.mark.cluster
def test_a_completed_run_is_not_resumed() -> None:
    run = finished.run()
    result = CliRunner().invoke(main, ["resume", run.id[:12]])
    assert result.exit_code == 2
    assert "COMPLETED" in result.output
    assert "only a run that ended" in result.output
    assert len(result.output.strip().splitlines()) == 1
