"""`dagflow.testing.local_flows`: in-process cluster and a throwaway home, restored afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dagflow import flow, get_flow_run, task
from dagflow.testing import local_flows


@task
def double(x: int) -> int:
    return 2 * x


@flow
def doubled(n: int = 3) -> int:
    return sum(f.result() for f in double.map(range(n)))


def test_sets_the_cluster_and_a_fresh_home_then_removes_it() -> None:
    with local_flows() as home:
        assert os.environ["DAGFLOW_CLUSTER"] == "local-threads"
        assert os.environ["DAGFLOW_HOME"] == str(home)
        assert home.is_dir()
        (home / "scratch.txt").write_text("x")
    assert not home.exists()


def test_restores_the_environment_it_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DAGFLOW_CLUSTER", "tcp://127.0.0.1:1")
    monkeypatch.setenv("DAGFLOW_HOME", "/somewhere/else")
    monkeypatch.setenv("DAGFLOW_DATABASE_URL", "postgresql+psycopg://u@h/db")
    with local_flows(tmp_path / "home", cluster="local"):
        assert os.environ["DAGFLOW_CLUSTER"] == "local"
        assert os.environ["DAGFLOW_HOME"] == str(tmp_path / "home")
        assert "DAGFLOW_DATABASE_URL" not in os.environ
    assert os.environ["DAGFLOW_CLUSTER"] == "tcp://127.0.0.1:1"
    assert os.environ["DAGFLOW_HOME"] == "/somewhere/else"
    assert os.environ["DAGFLOW_DATABASE_URL"] == "postgresql+psycopg://u@h/db"


def test_unset_variables_are_unset_again_even_after_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DAGFLOW_CLUSTER", raising=False)
    monkeypatch.delenv("DAGFLOW_DATABASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="boom"), local_flows(tmp_path):
        raise RuntimeError("boom")
    assert "DAGFLOW_CLUSTER" not in os.environ
    assert "DAGFLOW_DATABASE_URL" not in os.environ


def test_a_given_home_is_created_and_left_in_place(tmp_path: Path) -> None:
    home = tmp_path / "a" / "b"
    with local_flows(home) as yielded:
        assert yielded == home
        assert home.is_dir()
    assert home.is_dir()


def test_a_blank_cluster_name_is_refused() -> None:
    with pytest.raises(ValueError, match="local_flows: cluster must be a cluster name"):  # noqa: SIM117
        with local_flows(cluster=" "):
            pass


@pytest.mark.cluster
def test_flows_inside_run_on_the_in_process_cluster(tmp_path: Path) -> None:
    with local_flows(tmp_path):
        run = doubled.run(n=4)
        recorded = get_flow_run(run.id)
    assert recorded.state is run.state
    assert run.state.is_success
    assert run.result() == 12
    assert len(run.task_runs) == 4
    assert str(run.cluster_address).startswith("inproc://")  # workers are threads of this process
    assert (tmp_path / "dagflow.db").is_file()  # the run history went to the temporary home
