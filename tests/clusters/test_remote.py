"""A flow on a real `dask scheduler` + `dask worker`, named every way a cluster can be named.

The flow lives in a file in a temporary directory that the worker (started in another directory)
cannot import: its tasks must travel by value. One scheduler and worker serve the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from dask_procs import DaskProcesses, free_port, load_module, write_flow

from dagflow import clusters
from dagflow.cli import main
from dagflow.core.states import StateType
from dagflow.runtime import run_flow

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaskProcesses]:
    procs = DaskProcesses(tmp_path_factory.mktemp("remote"))
    try:
        procs.start_scheduler()
        procs.add_worker()
        procs.wait_for_workers(1)
        yield procs
    finally:
        clusters.close_all()
        procs.stop()


def profile_file(directory: Path, name: str, address: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.yaml"
    path.write_text(f"kind: address\naddress: {address}\ntimeout: 20\n")
    return path


def assert_ran_remotely(run: object, remote: DaskProcesses) -> None:
    assert run.state is StateType.COMPLETED, run.error  # type: ignore[attr-defined]
    assert run.result() == 60  # type: ignore[attr-defined]
    assert run.cluster_address == remote.address  # type: ignore[attr-defined]


def test_by_address(remote: DaskProcesses, tmp_path: Path) -> None:
    module = load_module(write_flow(tmp_path))
    run = run_flow(module.remote_sum, {"n": 4}, cluster=remote.address)
    assert_ran_remotely(run, remote)


def test_by_profile_path(remote: DaskProcesses, tmp_path: Path) -> None:
    module = load_module(write_flow(tmp_path))
    path = profile_file(tmp_path / "elsewhere", "lab", remote.address)
    run = run_flow(module.remote_sum, {"n": 4}, cluster=str(path))
    assert_ran_remotely(run, remote)


def test_by_profile_name_in_cwd_clusters(
    remote: DaskProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_module(write_flow(tmp_path))
    profile_file(tmp_path / "clusters", "lab", remote.address)
    monkeypatch.chdir(tmp_path)
    run = run_flow(module.remote_sum, {"n": 4}, cluster="lab")
    assert_ran_remotely(run, remote)


def test_by_profile_name_in_dagflow_home(
    remote: DaskProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_module(write_flow(tmp_path / "flows"))
    profile_file(tmp_path / "home" / "clusters", "homelab", remote.address)
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "flows")
    run = run_flow(module.remote_sum, {"n": 4}, cluster="homelab")
    assert_ran_remotely(run, remote)


def test_by_env_variable(
    remote: DaskProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = load_module(write_flow(tmp_path, cluster="no-such-profile"))
    monkeypatch.setenv("DAGFLOW_CLUSTER", remote.address)
    run = module.remote_sum.run(n=4)  # DAGFLOW_CLUSTER wins over the flow's cluster=
    assert_ran_remotely(run, remote)


def test_by_flow_option(remote: DaskProcesses, tmp_path: Path) -> None:
    module = load_module(write_flow(tmp_path, cluster=remote.address))
    run = module.remote_sum.run(n=4)
    assert_ran_remotely(run, remote)


def test_plain_helper_of_an_uninstalled_flow_file_reaches_the_workers(
    remote: DaskProcesses, tmp_path: Path
) -> None:
    """A task calling a plain function of its (not installed) file: the module goes by value."""
    module = load_module(write_flow(tmp_path, helper=True))
    run = run_flow(module.remote_sum, {"n": 4}, cluster=remote.address)
    assert_ran_remotely(run, remote)


def test_cli_runs_a_flow_file_on_the_remote_cluster(remote: DaskProcesses, tmp_path: Path) -> None:
    path = write_flow(tmp_path / "flows", helper=True)
    target = f"{path}:remote_sum"
    result = CliRunner().invoke(main, ["run", target, "-p", "n=4", "--cluster", remote.address])
    assert result.exit_code == 0, result.output
    assert "60" in result.output


def test_cluster_info_lists_the_worker(remote: DaskProcesses) -> None:
    result = CliRunner().invoke(main, ["cluster", "info", remote.address])
    assert result.exit_code == 0, result.output
    assert f"scheduler: {remote.address}" in result.output
    assert "workers:   1, threads: 1" in result.output
    assert "warning: package versions differ" not in result.output


def test_unreachable_address_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "gone.yaml"
    path.write_text(f"kind: address\naddress: tcp://127.0.0.1:{free_port()}\ntimeout: 1\n")
    result = CliRunner().invoke(main, ["cluster", "info", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(path) in lines[0] and "address" in lines[0] and "cannot reach" in lines[0]
