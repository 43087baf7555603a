"""Profile files and cluster names: what loads, what each mistake says (no cluster started)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from dagflow import clusters
from dagflow.cli import main
from dagflow.cli.cluster import version_mismatches
from dagflow.clusters import find_profile, insecure_address_warning, resolve_name
from dagflow.clusters.profiles import (
    AddressProfile,
    ClusterProfile,
    JobqueueProfile,
    LocalProfile,
    load_profile,
)
from dagflow.errors import ClusterError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> str:
    with pytest.raises(ClusterError) as info:
        load_profile(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: local\noptions: [1, 2\n", "invalid YAML at line"),
        ("kind: cloud\n", "kind: unknown kind 'cloud' (one of local, address"),
        ("options: {}\n", "kind: missing"),
        ("- a\n- b\n", "must be a mapping"),
        ("kind: local\noptions:\n  n_workrs: 2\n", "options.n_workrs: unknown option (known:"),
        ("kind: local\noptions:\n  n_workers: many\n", "options.n_workers:"),
        ("kind: local\nscale: 2\nadapt: {maximum: 3}\n", "either scale or adapt"),
        ("kind: local\nadapt: {minimum: 5, maximum: 3}\n", "adapt: minimum (5) is above maximum"),
        ("kind: local\ncolour: red\n", "colour: unknown field"),
        ("kind: address\n", "address: required field missing"),
        ("kind: address\naddress: sched:8786\n", "address: 'sched:8786' is not a scheduler"),
        ("kind: address\naddress: tls://a:1\n", "a tls:// address needs tls"),
        ("kind: address\naddress: ${NOPE_NOT_SET}\n", "address: environment variable NOPE_NOT_SET"),
        ("kind: jobqueue\nsystem: mainframe\n", "system: unknown system 'mainframe'"),
        ("kind: class\nclass: not a path\n", "class: 'not a path' is not an import path"),
        ("kind: ssh\nhosts: [one]\n", "hosts:"),
    ],
)
def test_bad_profile_is_one_line_naming_file_and_field(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in error_of(write(tmp_path, text))


def test_tls_files_are_checked_and_relative_to_the_profile(tmp_path: Path) -> None:
    (tmp_path / "certs").mkdir()
    for name in ("ca.pem", "c.pem"):
        (tmp_path / "certs" / name).write_text("x")
    text = (
        "kind: address\naddress: tls://h:1\n"
        "tls: {ca_file: certs/ca.pem, cert: certs/c.pem, key: k}\n"
    )
    assert "tls.key: no such file" in error_of(write(tmp_path, text))
    (tmp_path / "k").write_text("x")
    profile = load_profile(write(tmp_path, text))
    assert isinstance(profile, AddressProfile) and profile.tls is not None
    assert profile.tls.ca_file == str(tmp_path / "certs" / "ca.pem")


def test_missing_file_and_unknown_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "no such cluster profile file" in error_of(tmp_path / "absent.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ClusterError, match=r"unknown cluster 'nowhere': no profile nowhere\.yaml"):
        find_profile("nowhere")


def test_env_defaults_expand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "kind: address\naddress: ${SCHED_X:-tcp://127.0.0.1:9999}\n")
    monkeypatch.delenv("SCHED_X", raising=False)
    assert load_profile(path).address == "tcp://127.0.0.1:9999"  # type: ignore[attr-defined]
    monkeypatch.setenv("SCHED_X", "tcp://127.0.0.1:1234")
    assert load_profile(path).address == "tcp://127.0.0.1:1234"  # type: ignore[attr-defined]


def test_shipped_profiles_all_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for env in ("DAGFLOW_TLS_CA", "DAGFLOW_TLS_CERT", "DAGFLOW_TLS_KEY"):
        (tmp_path / env).write_text("x")
        monkeypatch.setenv(env, str(tmp_path / env))
    monkeypatch.delenv("DAGFLOW_SCHEDULER_ADDRESS", raising=False)
    shipped = {p.stem: load_profile(p) for p in sorted((REPO / "clusters").glob("*.yaml"))}
    assert set(shipped) >= {
        "local",
        "local-threads",
        "remote",
        "remote-tls",
        "ssh",
        "slurm",
        "kubernetes",
    }
    assert all(isinstance(p, ClusterProfile) for p in shipped.values())
    assert shipped["remote"].address == "tcp://127.0.0.1:8786"  # type: ignore[attr-defined]
    assert shipped["remote-tls"].address.startswith("tls://")  # type: ignore[attr-defined]
    assert isinstance(shipped["slurm"], JobqueueProfile) and shipped["slurm"].adapt is not None
    local, threads = shipped["local"], shipped["local-threads"]
    assert isinstance(local, LocalProfile) and isinstance(threads, LocalProfile)
    assert local.options.processes and not threads.options.processes
    assert local.options.host == "127.0.0.1"
    assert local.options.dashboard_address == "127.0.0.1:8787"


def test_builtin_names_work_without_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path))
    for name, processes in (("local", True), ("local-threads", False)):
        profile = find_profile(name)
        assert isinstance(profile, LocalProfile)
        assert profile.options.processes is processes
        kwargs = clusters.local_options(profile)
        assert kwargs["dashboard_address"].startswith("127.0.0.1:")
        assert kwargs["scheduler_kwargs"]["preload"] == ["dagflow.dashboard"]
        assert kwargs.get("host", "127.0.0.1") == "127.0.0.1"


def test_name_forms() -> None:
    assert isinstance(find_profile("tcp://10.0.0.5:8786"), AddressProfile)
    assert find_profile("127.0.0.1:8786").address == "tcp://127.0.0.1:8786"  # type: ignore[attr-defined]


def test_resolution_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_name(None, None) == "local"
    assert resolve_name(None, "flowside") == "flowside"
    monkeypatch.setenv("DAGFLOW_CLUSTER", "fromenv")
    assert resolve_name(None, "flowside") == "fromenv"
    assert resolve_name("fromcli", "flowside") == "fromcli"


def test_plain_tcp_to_another_host_warns_with_the_tls_way() -> None:
    assert insecure_address_warning("tcp://127.0.0.1:8786") is None
    assert insecure_address_warning("tcp://localhost:8786") is None
    assert insecure_address_warning("tls://sched.example.org:8786") is None
    warning = insecure_address_warning("tcp://sched.example.org:8786")
    assert warning is not None and "tls://" in warning and "remote-tls.yaml" in warning


def test_unreachable_loopback_scheduler_fails_in_one_line_without_tls_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "kind: address\naddress: tcp://127.0.0.1:1\ntimeout: 1\n")
    with (
        caplog.at_level(logging.WARNING, logger="dagflow.clusters"),
        pytest.raises(ClusterError) as info,
    ):
        clusters.get_cluster(str(path))
    assert str(info.value).startswith(f"{path}: address: cannot reach the Dask scheduler")
    assert "\n" not in str(info.value)
    assert not caplog.records


def test_missing_extra_names_it(tmp_path: Path) -> None:
    import importlib.util

    path = write(tmp_path, "kind: jobqueue\nsystem: slurm\n")
    if importlib.util.find_spec("dask_jobqueue") is not None:
        pytest.skip("dask_jobqueue is installed here")
    with pytest.raises(ClusterError, match=r"pip install 'dagflow\[jobqueue\]'"):
        clusters.get_cluster(str(path))


def test_class_kind_must_be_a_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: class\nclass: collections.OrderedDict\n")
    with pytest.raises(ClusterError, match=r"class: 'collections\.OrderedDict' is not a"):
        clusters.get_cluster(str(path))
    path = write(tmp_path, "kind: class\nclass: nosuchpkg.Cluster\n", "q.yaml")
    with pytest.raises(ClusterError, match=r"class: cannot import 'nosuchpkg\.Cluster'"):
        clusters.get_cluster(str(path))


def test_cli_bad_profile_exit_code_2_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "kind: local\noptions:\n  threads: 2\n")
    result = CliRunner().invoke(main, ["cluster", "info", str(path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "options.threads" in lines[0]


def test_version_mismatches_name_package_and_places() -> None:
    from distributed.versions import get_versions

    mine = get_versions(["dagflow"])
    other = {**mine, "packages": {**mine["packages"], "cloudpickle": "0.0.1"}}
    no_dagflow = {**mine, "packages": {**mine["packages"], "dagflow": None}}
    same = {"client": mine, "scheduler": mine, "workers": {"tcp://w1": mine}}
    assert version_mismatches(same) == []
    differ = version_mismatches({**same, "workers": {"tcp://w1": mine, "tcp://w2": other}})
    assert len(differ) == 1 and differ[0].startswith("cloudpickle: ")
    assert "worker tcp://w2 0.0.1" in differ[0]
    missing = version_mismatches({**same, "workers": {"tcp://w1": no_dagflow}})
    assert missing and "worker tcp://w1 not installed" in missing[0]


@pytest.mark.cluster
@pytest.mark.parametrize("name", ["local-threads", "local"])
def test_local_clusters_listen_on_loopback_only(name: str) -> None:
    """Every socket the local cluster opens (scheduler, dashboard, workers) is on 127.0.0.1."""
    import psutil

    handle = clusters.get_cluster(name)
    pids = {os.getpid()} | {p.pid for p in psutil.Process().children(recursive=True)}
    listening = {
        (conn.laddr.ip, conn.laddr.port)
        for pid in pids
        for conn in psutil.Process(pid).net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    }
    assert handle.client.status == "running"
    assert listening, "the cluster listens somewhere"
    assert {ip for ip, _ in listening} == {"127.0.0.1"}, sorted(listening)


# ---------------------------------------------------------------- shipped profiles, from anywhere


def test_the_shipped_profiles_are_the_documented_copies() -> None:
    builtin = Path(clusters.__file__).parent / "builtin"
    shipped = sorted(p.name for p in builtin.glob("*.yaml"))
    documented = sorted(p.name for p in (REPO / "clusters").glob("*.yaml"))
    assert shipped == documented and "remote.yaml" in shipped
    for name in shipped:
        assert (builtin / name).read_bytes() == (REPO / "clusters" / name).read_bytes(), name


def test_shipped_profiles_work_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./clusters here
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DAGFLOW_SCHEDULER_ADDRESS", raising=False)
    remote = find_profile("remote")
    assert isinstance(remote, AddressProfile) and remote.address == "tcp://127.0.0.1:8786"
    assert remote.source == "built-in profile 'remote'"
    assert isinstance(find_profile("slurm"), JobqueueProfile)
    # $DAGFLOW_HOME/clusters replaces a built-in, and ./clusters replaces both
    write(
        tmp_path / "home" / "clusters", "kind: address\naddress: tcp://127.0.0.1:1\n", "remote.yaml"
    )
    assert find_profile("remote").address == "tcp://127.0.0.1:1"  # type: ignore[attr-defined]
    write(tmp_path / "clusters", "kind: address\naddress: tcp://127.0.0.1:2\n", "remote.yaml")
    assert find_profile("remote").address == "tcp://127.0.0.1:2"  # type: ignore[attr-defined]
    with pytest.raises(ClusterError, match=r"no built-in profile of that name \(kubernetes, local"):
        find_profile("nowhere")


def test_the_builtin_tls_profile_reads_certificates_from_dagflow_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "home"))
    for env in ("DAGFLOW_TLS_CA", "DAGFLOW_TLS_CERT", "DAGFLOW_TLS_KEY"):
        monkeypatch.delenv(env, raising=False)
    certs = tmp_path / "home" / "clusters" / "certs"
    with pytest.raises(ClusterError) as info:
        find_profile("remote-tls")
    assert str(info.value) == (
        f"built-in profile 'remote-tls': tls.ca_file: no such file {certs / 'ca.pem'}"
    )
    certs.mkdir(parents=True)
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (certs / name).write_text("x")
    profile = find_profile("remote-tls")
    assert isinstance(profile, AddressProfile) and profile.tls is not None
    assert profile.tls.cert == str(certs / "client.pem")


def test_ipv6_addresses_are_names_too() -> None:
    profile = find_profile("[::1]:8786")
    assert isinstance(profile, AddressProfile) and profile.address == "tcp://[::1]:8786"
    assert insecure_address_warning("tcp://[::1]:8786") is None
    warning = insecure_address_warning("tcp://[2001:db8::1]:8786")
    assert warning is not None and "plain TCP" in warning


def test_a_refused_scheduler_port_fails_at_once_in_one_line(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    result = CliRunner().invoke(main, ["cluster", "info", f"tcp://127.0.0.1:{port}"])
    took = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "
        "connection refused (no scheduler listens there)"
    )
    assert took < 2.0, took  # the profile's timeout is 10 s; a refusal needs no waiting


def test_cluster_info_describes_a_profile_without_starting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGFLOW_HOME", str(tmp_path / "home"))
    started = time.monotonic()
    result = CliRunner().invoke(main, ["cluster", "info", "local"])
    assert result.exit_code == 0, result.output
    assert time.monotonic() - started < 3.0  # nothing was started
    assert "profile:   built-in profile 'local'" in result.output
    assert "not running" in result.output and "worker processes" in result.output
    assert "dagflow cluster start local" in result.output
    data = json.loads(CliRunner().invoke(main, ["cluster", "info", "slurm", "--json"]).stdout)
    assert data["running"] is False and data["kind"] == "jobqueue" and data["workers"] == []
    assert data["profile"]["system"] == "slurm" and data["profile"]["adapt"]["maximum"] == 20


@pytest.fixture
def other_service() -> Iterator[int]:
    """A port on 127.0.0.1 where something that is not Dask answers (an HTTP server's error)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 8)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(10)


def test_an_address_where_another_service_answers_is_one_line(other_service: int) -> None:
    import gc

    address = f"tcp://127.0.0.1:{other_service}"
    result = CliRunner().invoke(main, ["cluster", "info", address])
    assert result.exit_code == 2, result.output
    assert result.output.strip() == (
        f"Error: {address} answered, but not as a Dask scheduler (is it another service's port, "
        "such as the dashboard's?): what it sent is not Dask's protocol"
    )
    gc.collect()  # no half-made client is left to complain later
