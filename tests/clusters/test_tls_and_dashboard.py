"""TLS end to end with the shipped remote-tls profile; the dagflow page in the Dask dashboard."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from dask_procs import DaskProcesses, free_port

from dagflow import clusters, flow, task
from dagflow.core.states import StateType
from dagflow.runtime import run_flow

pytestmark = pytest.mark.cluster
REPO = Path(__file__).resolve().parents[2]


@task
def square(x: int) -> int:
    return x * x


@flow(name="squares")
def squares(n: int = 5) -> int:
    return sum(f.result() for f in square.map(list(range(n))))


def make_certs(directory: Path) -> tuple[str, str, str]:
    """A CA and one certificate it signed for 127.0.0.1 (used by every role here)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    now = dt.datetime.now(dt.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("dagflow test CA"))
        .issuer_name(name("dagflow test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.pem", directory / "node.pem", directory / "node-key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(paths[0]), str(paths[1]), str(paths[2])


def test_shipped_tls_profile_runs_a_flow_over_tls(
    dask_procs: DaskProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, cert, key = make_certs(tmp_path / "certs")
    address = dask_procs.start_scheduler(tls=(ca, cert, key))
    assert address.startswith("tls://")
    dask_procs.add_worker()
    monkeypatch.setenv("DAGFLOW_SCHEDULER_ADDRESS", address)
    monkeypatch.setenv("DAGFLOW_TLS_CA", ca)
    monkeypatch.setenv("DAGFLOW_TLS_CERT", cert)
    monkeypatch.setenv("DAGFLOW_TLS_KEY", key)
    profile = str(REPO / "clusters" / "remote-tls.yaml")
    try:
        run = run_flow(squares, {"n": 5}, cluster=profile)
        assert run.state is StateType.COMPLETED, run.error
        assert run.result() == 30
        assert run.cluster_address == address
    finally:
        clusters.close(profile)


def test_the_readme_recipe_makes_the_files_the_shipped_tls_profile_reads(
    dask_procs: DaskProcesses, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """clusters/README.md's openssl commands, run as written; its certs/ copied where it says;
    then `--cluster remote-tls` from a directory without ./clusters runs a flow over TLS."""
    readme = (REPO / "clusters" / "README.md").read_text()
    recipe = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    made = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe], cwd=tmp_path, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    certs = tmp_path / "certs"
    ca, node, node_key = (str(certs / n) for n in ("ca.pem", "node.pem", "node-key.pem"))
    address = dask_procs.start_scheduler(tls=(ca, node, node_key))
    dask_procs.add_worker()
    home = tmp_path / "home"
    (home / "clusters").mkdir(parents=True)
    shutil.copytree(certs, home / "clusters" / "certs")  # where the README says to put them
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("DAGFLOW_HOME", str(home))
    monkeypatch.setenv("DAGFLOW_SCHEDULER_ADDRESS", address)
    for env in ("DAGFLOW_TLS_CA", "DAGFLOW_TLS_CERT", "DAGFLOW_TLS_KEY"):
        monkeypatch.delenv(env, raising=False)
    try:
        run = run_flow(squares, {"n": 4}, cluster="remote-tls")
        assert run.state is StateType.COMPLETED, run.error
        assert run.result() == 14 and run.cluster_address == address
    finally:
        clusters.close("remote-tls")


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def test_dagflow_page_on_a_remote_schedulers_dashboard(dask_procs: DaskProcesses) -> None:
    # the scheduler reads the same run history as this test's driver (as a team's would)
    history = {"DAGFLOW_HOME": os.environ["DAGFLOW_HOME"]}
    dask_procs.start_scheduler(dashboard=True, preload=True, env=history)
    dask_procs.add_worker()
    dask_procs.wait_for_workers(1)
    run = run_flow(squares, {"n": 5}, cluster=dask_procs.address)
    assert run.state is StateType.COMPLETED, run.error
    base = f"http://127.0.0.1:{dask_procs.dashboard_port}"
    status, body = get(f"{base}/dagflow/api/runs")
    assert status == 200
    (row,) = [r for r in json.loads(body)["runs"] if r["run_id"] == run.id]
    assert row["flow"] == "squares"
    assert row["tasks"] == 5 and row["done"] == 5 and row["progress"] == 1.0
    status, body = get(f"{base}/dagflow/api/runs?run={run.id}")
    assert status == 200 and [r["run_id"] for r in json.loads(body)["runs"]] == [run.id]
    assert row["state"] == "COMPLETED" and row["task_counts"] == {"COMPLETED": 5}
    status, page = get(f"{base}/dagflow")
    assert status == 200 and f"data-run='{run.id}'".encode() in page
    _, menu = get(f"{base}/status")
    assert b"individual-dagflow-runs" in menu  # listed in the dashboard's "More..." menu
    status, listed = get(f"{base}/individual-dagflow-runs")
    assert status == 200 and run.id.encode() in listed


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
def test_local_clusters_get_the_dagflow_page(processes: bool, tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "kind: local\noptions:\n  n_workers: 1\n"
        f"  processes: {str(processes).lower()}\n  dashboard_address: 127.0.0.1:{free_port()}\n"
    )
    try:
        handle = clusters.get_cluster(str(path))
        assert handle.dashboard_link and handle.dashboard_link.startswith("http://127.0.0.1:")
        run = run_flow(squares, {"n": 3}, cluster=str(path))
        assert run.state is StateType.COMPLETED, run.error
        base = handle.dashboard_link.rsplit("/status", 1)[0]
        status, body = get(f"{base}/dagflow/api/runs?run={run.id}")
        assert status == 200 and json.loads(body)["runs"][0]["tasks"] == 3
        assert get(f"{base}/dagflow")[0] == 200
        if processes:
            assert handle.address.startswith("tcp://127.0.0.1:")
    finally:
        clusters.close(str(path))


def test_cluster_start_keeps_a_cluster_up_until_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "up.yaml"
    path.write_text(
        "kind: local\noptions:\n  n_workers: 1\n  processes: false\n"
        f"  dashboard_address: 127.0.0.1:{free_port()}\n"
    )
    port = free_port()
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    env = {**os.environ, "DAGFLOW_HOME": str(tmp_path / "home")}
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dagflow.cli",
                "cluster",
                "start",
                str(path),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=err,
            env=env,
            text=True,
        )
    try:
        # wait for what it prints (not for a fixed time): the slower the machine, the longer
        deadline = time.monotonic() + 120
        while "press Ctrl-C to stop it" not in err_path.read_text():
            assert proc.poll() is None, err_path.read_text()
            assert time.monotonic() < deadline, out_path.read_text() + err_path.read_text()
            time.sleep(0.1)
        lines = out_path.read_text().splitlines()
        assert lines[0] == f"scheduler: tcp://127.0.0.1:{port}", lines
        assert lines[1].startswith("dashboard: http://127.0.0.1:")
        from distributed import Client

        with Client(f"tcp://127.0.0.1:{port}", timeout="30s") as client:
            assert client.submit(sum, [1, 2]).result(timeout=60) == 3
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, err_path.read_text()
        assert err_path.read_text().endswith("stopping the cluster ...\n")
        assert "Traceback" not in err_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
