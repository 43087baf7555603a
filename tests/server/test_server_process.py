"""`dagflow server start` as a real process: URL and token printed, health, TLS, bad binds."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_SECONDS = 60


class ServerProcess:
    def __init__(self, home: Path, *args: str, env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "DAGFLOW_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
        full_env.pop("DAGFLOW_DATABASE_URL", None)
        if "DAGFLOW_API_TOKEN" not in (env or {}):
            full_env.pop("DAGFLOW_API_TOKEN", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "dagflow.cli", "server", "start", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
            start_new_session=True,
        )
        self.lines: list[str] = []

    def wait_for_url(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line.rstrip("\n"))
            if line.startswith("remote CLI:"):
                return self.lines[0].split()[3]
        raise AssertionError(f"no URL printed: {self.lines} {self.stop()}")

    def stop(self) -> str:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            _, err = self.proc.communicate()
        return err


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


def start(servers: list[ServerProcess], home: Path, *args: str, **kw: object) -> ServerProcess:
    server = ServerProcess(home, *args, **kw)  # type: ignore[arg-type]
    servers.append(server)
    return server


def test_start_prints_url_and_a_new_token_once(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    first = start(servers, tmp_path, "--port", "0")
    url = first.wait_for_url()
    assert url.startswith("http://127.0.0.1:")
    token = first.lines[1].removeprefix("token: ")
    kept = tmp_path / "server-token"
    assert kept.read_text().strip() == token and f"kept in {kept}" in first.lines[2]
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert f"{url}/login#token={token}" in first.lines[3]
    assert httpx.get(f"{url}/api/v1/health").json()["status"] == "ok"
    runs = httpx.get(f"{url}/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
    assert runs.status_code == 200 and runs.json()["runs"] == []
    assert httpx.get(f"{url}/api/v1/runs").status_code == 401
    err = first.stop()
    assert first.proc.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err

    second = start(servers, tmp_path, "--port", "0")
    second.wait_for_url()
    assert second.lines[1] == f"token: from {kept} (`dagflow server token` prints it)"
    assert token not in "\n".join(second.lines)


def test_a_taken_port_is_one_line_and_exit_2(servers: list[ServerProcess], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start(servers, tmp_path, "--port", str(port))
        _, err = server.proc.communicate(timeout=STARTUP_SECONDS)
    assert server.proc.returncode == 2
    assert err.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"
    ]


def test_binding_beyond_loopback_without_tls_warns(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    server = start(servers, tmp_path, "--host", "0.0.0.0", "--port", "0")
    url = server.wait_for_url()
    port = url.rpartition(":")[2]
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
    err = server.stop()
    assert "without TLS" in err and "--ssl-certfile" in err


def test_tls_with_uvicorns_certificate_options(
    servers: list[ServerProcess], tmp_path: Path
) -> None:
    ca, cert, key = make_certs(tmp_path / "certs")
    server = start(
        servers,
        tmp_path,
        "--port",
        "0",
        "--ssl-certfile",
        cert,
        "--ssl-keyfile",
        key,
        env={"DAGFLOW_API_TOKEN": "tls-token"},
    )
    url = server.wait_for_url()
    assert url.startswith("https://127.0.0.1:")
    assert server.lines[1] == "token: from DAGFLOW_API_TOKEN (`dagflow server token` prints it)"
    with httpx.Client(verify=ssl.create_default_context(cafile=ca)) as client:
        assert client.get(f"{url}/api/v1/health").status_code == 200
        answer = client.get(f"{url}/api/v1/runs", headers={"Authorization": "Bearer tls-token"})
        assert answer.status_code == 200
    assert "without TLS" not in server.stop()


def make_certs(directory: Path) -> tuple[str, str, str]:
    """A CA and a certificate it signed for 127.0.0.1."""
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
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
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
