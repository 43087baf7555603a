"""Real `dagflow serve` processes for the tests: started with their own environment, read through
their log file, interrupted like a terminal would, and always stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

DAGFLOW = str(Path(sys.executable).with_name("dagflow"))
T = TypeVar("T")


def environment(home: Path, database_url: str) -> dict[str, str]:
    env = os.environ.copy()
    env.pop("DAGFLOW_CLUSTER", None)
    env["DAGFLOW_HOME"] = str(home)
    env["DAGFLOW_DATABASE_URL"] = database_url
    return env


class ServeProcess:
    """One `dagflow serve ...` process; its stdout and stderr go to `log`."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], name: str = "serve"):
        self.log = cwd / f"{name}-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(
            [DAGFLOW, "serve", *args],
            cwd=cwd,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, needle: str, timeout: float = 90.0) -> None:
        wait_until(lambda: needle in self.text() or self._dead(), timeout, f"log {needle!r}")
        assert needle in self.text(), self.text()[-3000:]

    def _dead(self) -> bool:
        return self.proc.poll() is not None

    def interrupt(self) -> None:
        """What Ctrl-C does to the serve process (its run children are in their own session)."""
        self.proc.send_signal(signal.SIGINT)

    def wait(self, timeout: float = 120.0) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        """Stop by pid whatever state it is in (the test's cleanup)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(30)
        self._out.close()


def wait_until(check: Callable[[], T], timeout: float, what: str, every: float = 0.2) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)


def dagflow(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DAGFLOW, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
