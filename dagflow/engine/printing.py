"""`log_prints=True`: turn `print` inside a task or flow into run log records.

`sys.stdout` is process-wide but tasks run in threads, so the capture is per thread: a proxy
installed once in front of `sys.stdout` routes writes from a capturing thread to the run logger
(one record per line) and passes every other write through untouched.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any, TextIO

_local = threading.local()
_install_lock = threading.Lock()


class _StdoutRouter:
    """Stands in for sys.stdout; capturing threads write to the run log instead."""

    def __init__(self, inner: TextIO) -> None:
        self.inner = inner

    def write(self, text: str) -> int:
        sink = getattr(_local, "sink", None)
        if sink is None:
            return self.inner.write(text)
        sink.write(text)
        return len(text)

    def flush(self) -> None:
        sink = getattr(_local, "sink", None)
        if sink is None:
            self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


PARTIAL_LIMIT = 64 * 1024  # a line longer than this without a newline is logged in pieces


class _LineSink:
    def __init__(self) -> None:
        self.partial = ""

    def write(self, text: str) -> None:
        from dagflow.engine.logs import get_run_logger

        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        if len(self.partial) > PARTIAL_LIMIT:
            lines.append(self.partial)
            self.partial = ""
        if not lines:
            return
        logger = get_run_logger()
        _local.sink = None  # a handler that prints must not loop back here
        try:
            for line in lines:
                logger.info(line)
        finally:
            _local.sink = self

    def close(self) -> None:
        if self.partial:
            from dagflow.engine.logs import get_run_logger

            get_run_logger().log(logging.INFO, self.partial)
            self.partial = ""


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _StdoutRouter):
            sys.stdout = _StdoutRouter(sys.stdout)


@contextlib.contextmanager
def capture(enabled: bool) -> Iterator[None]:
    """While active, `print` in this thread becomes INFO records of the current run."""
    if not enabled:
        yield
        return
    _install()
    previous = getattr(_local, "sink", None)
    sink = _local.sink = _LineSink()
    try:
        yield
    finally:
        _local.sink = previous
        sink.close()
