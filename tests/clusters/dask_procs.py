"""Real `dask scheduler` / `dask worker` processes on free 127.0.0.1 ports, stopped by pid,
and single-file flows written outside the workers' reach."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{log.read_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} did not open:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class DaskProcesses:
    """One scheduler and its workers; workers run in `workdir`, away from the tests' files."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.workdir = tmp_path / "worker-cwd"
        self.workdir.mkdir(exist_ok=True)
        self.scheduler: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.scheme = "tcp"
        self.port = 0
        self.dashboard_port: int | None = None
        self.tls_args: list[str] = []
        self._logs: list[Path] = []

    @property
    def address(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _env(self, extra: dict[str, str] | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGFLOW_", "PYTEST"))}
        env.update(extra or {})
        return env

    def _spawn(self, args: list[str], name: str, env: dict[str, str] | None) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self._logs.append(log)
        with log.open("wb") as out:
            return subprocess.Popen(
                args, cwd=self.workdir, env=self._env(env), stdout=out, stderr=subprocess.STDOUT
            )

    def start_scheduler(
        self,
        *,
        dashboard: bool = False,
        preload: bool = False,
        env: dict[str, str] | None = None,
        tls: tuple[str, str, str] | None = None,
    ) -> str:
        self.port = free_port()
        args = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port)]
        if dashboard:
            self.dashboard_port = free_port()
            args += ["--dashboard-address", f"127.0.0.1:{self.dashboard_port}"]
        else:
            args += ["--no-dashboard"]
        if preload:
            args += ["--preload", "dagflow.dashboard"]
        if tls:
            self.scheme = "tls"
            ca, cert, key = tls
            self.tls_args = ["--tls-ca-file", ca, "--tls-cert", cert, "--tls-key", key]
            args += ["--protocol", "tls", *self.tls_args]
        self.scheduler = self._spawn(args, "scheduler", env)
        _wait_port(self.port, self.scheduler, self._logs[-1])
        return self.address

    def add_worker(
        self, *, resources: str | None = None, name: str | None = None, nanny: bool = False
    ) -> subprocess.Popen[bytes]:
        args = [DASK, "worker", self.address, "--nworkers", "1", "--nthreads", "1"]
        args += ["--host", "127.0.0.1", "--no-dashboard", *self.tls_args]
        args += ["--nanny" if nanny else "--no-nanny"]
        if resources:
            args += ["--resources", resources]
        if name:
            args += ["--name", name]
        proc = self._spawn(args, f"worker-{len(self.workers)}", None)
        self.workers.append(proc)
        return proc

    def wait_for_workers(self, n: int, security: object | None = None) -> None:
        from distributed import Client

        with Client(self.address, security=security, timeout="30s") as client:
            client.wait_for_workers(n, timeout=START_TIMEOUT)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in self._logs)

    def stop(self) -> None:
        """Workers first, then the scheduler; SIGKILL whatever does not stop in time."""
        # a worker whose scheduler is gone keeps trying to reconnect: do not wait long for it
        orphaned = self.scheduler is not None and self.scheduler.poll() is not None
        for proc in self.workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(2 if orphaned else 10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.scheduler is not None:
            _stop(self.scheduler)


FLOW_SOURCE = '''
from dagflow import flow, task


def helper(x):
    """A plain function: pickled by reference unless the module is sent by value."""
    return x * 10


@task
def times_ten(x: int) -> int:
    return {body}


@task
def total(xs: list[int]) -> int:
    return sum(xs)


@flow(name="remote_sum"{cluster})
def remote_sum(n: int = 3) -> int:
    return total(times_ten.map(list(range(n))))
'''


def write_flow(directory: Path, cluster: str | None = None, *, helper: bool = False) -> Path:
    """A single-file flow outside the workers' sys.path (they run in another directory).

    With `helper`, a task calls a plain module-level function of the file.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "remote_flow_file.py"
    path.write_text(
        FLOW_SOURCE.format(
            cluster=f", cluster={cluster!r}" if cluster else "",
            body="helper(x)" if helper else "x * 10",
        )
    )
    return path


def load_module(path: Path) -> ModuleType:
    """Import a flow file the way `import myflow` would: a module in sys.modules, by file."""
    name = f"userflow_{uuid.uuid4().hex[:12]}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
