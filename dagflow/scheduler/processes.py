"""Starting the child process of one run: forked from a warm fork server, or a fresh interpreter.

A fresh `python -m dagflow.scheduler.child` pays for importing dagflow, Dask and SQLAlchemy on
every run (1.4 s of CPU here, several seconds of wall time on a busy machine). `ForkServer`
pays it once: multiprocessing's fork server, a clean single-threaded process started by serve
with those modules imported, forks each run's child from itself. Nothing is open in the fork
server (no database connection, no cluster client, no thread), so each child starts clean, and
a crash or a leak in one run stays in its own process. Each child makes a session of its own,
so a terminal's Ctrl-C reaches only the serve process; SIGTERM cancels its run.

The fork server is started with SIGINT ignored (it and the children it forks inherit that), so a
first Ctrl-C does not reach them; `fresh_process` is the fallback where fork is unavailable.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from typing import Any

from dagflow.scheduler import child as child_module

PRELOAD = [
    "dagflow.scheduler.child",
    "dagflow.runtime",
    "dagflow.engine.runner",
    "dagflow.store",
    "dagflow.clusters",
    "distributed",
]


def child_args(run_id: str, served_by: str, cluster: str, resume: bool = False) -> list[str]:
    return [
        run_id,
        "--served-by",
        served_by,
        "--cluster",
        cluster,
        *(["--resume"] if resume else []),
    ]


class Forked:
    """A child forked by the fork server, with the part of `Popen`'s interface serve uses."""

    def __init__(self, process: Any) -> None:
        self._process = process
        self.pid: int = process.pid

    def poll(self) -> int | None:
        code = self._process.exitcode
        if code is not None:
            self._process.join(0)
        return code

    def send_signal(self, sig: int) -> None:
        os.kill(self.pid, sig)


class ForkServer:
    """Starts children from a warm fork server (see the module docstring)."""

    def __init__(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._started = False

    def warm_up(self) -> None:
        """Start the fork server now (with SIGINT ignored), not at the first run."""
        if self._started:
            return
        from multiprocessing import forkserver

        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                forkserver.ensure_running()
            finally:
                signal.signal(signal.SIGINT, old)
        else:
            forkserver.ensure_running()
        self._started = True

    def start(self, run_id: str, served_by: str, cluster: str, resume: bool = False) -> Forked:
        self.warm_up()
        process = self._ctx.Process(
            target=run_forked,
            args=(child_args(run_id, served_by, cluster, resume),),
            name=f"dagflow-run-{run_id[:12]}",
            daemon=False,
        )
        process.start()
        return Forked(process)


def run_forked(argv: list[str]) -> None:
    """The child's entry point in a forked process."""
    try:
        os.setsid()  # a session of its own: the terminal's Ctrl-C is for serve to decide on
    except OSError:
        pass
    sys.exit(child_module.main(argv))


def fresh_process(
    run_id: str, served_by: str, cluster: str, resume: bool = False
) -> subprocess.Popen[bytes]:
    """Start `python -m dagflow.scheduler.child` for one run, in a session of its own."""
    args = child_args(run_id, served_by, cluster, resume)
    command = [sys.executable, "-m", child_module.__name__, *args]
    return subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
