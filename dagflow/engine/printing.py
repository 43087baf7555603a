"""`log_prints=True`: turn `print` inside a task or flow into run log records.

`sys.stdout` and `sys.stderr` are process-wide but tasks run in threads, so the capture is per
thread: a proxy installed once in front of each stream routes writes from a capturing thread to
the run logger (one record per line: INFO for stdout, WARNING for stderr) and passes every other
write through untouched.
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
LEVELS = {"stdout": logging.INFO, "stderr": logging.WARNING}


class _StreamRouter:
    """Stands in for sys.stdout or sys.stderr; capturing threads write to the run log instead."""

    def __init__(self, inner: TextIO, stream: str) -> None:
        self.inner = inner
        self.stream = stream

    def _sink(self) -> _LineSink | None:
        sinks = getattr(_local, "sinks", None)
        return sinks.get(self.stream) if sinks else None

    def write(self, text: str) -> int:
        sink = self._sink()
        if sink is None:
            return self.inner.write(text)
        sink.write(text)
        return len(text)

    def flush(self) -> None:
        if self._sink() is None:
            self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


PARTIAL_LIMIT = 64 * 1024  # a line longer than this without a newline is logged in pieces


class _LineSink:
    def __init__(self, level: int) -> None:
        self.level = level
        self.partial = ""

    def write(self, text: str) -> None:
        self.partial += text
        *lines, self.partial = self.partial.split("\n")
        if len(self.partial) > PARTIAL_LIMIT:
            lines.append(self.partial)
            self.partial = ""
        if lines:
            self._log(lines)

    def _log(self, lines: list[str]) -> None:
        from dagflow.engine.logs import get_run_logger

        logger = get_run_logger()
        sinks = _local.sinks
        _local.sinks = None  # a handler that prints must not loop back here
        try:
            for line in lines:
                logger.log(self.level, line)
        finally:
            _local.sinks = sinks

    def close(self) -> None:
        if self.partial:
            self._log([self.partial])
            self.partial = ""


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _StreamRouter):
            sys.stdout = _StreamRouter(sys.stdout, "stdout")
        if not isinstance(sys.stderr, _StreamRouter):
            sys.stderr = _StreamRouter(sys.stderr, "stderr")


@contextlib.contextmanager
def capture(enabled: bool) -> Iterator[None]:
    """While active, `print` in this thread becomes records of the current run (INFO for
    stdout, WARNING for `file=sys.stderr`)."""
    if not enabled:
        yield
        return
    _install()
    previous = getattr(_local, "sinks", None)
    sinks = _local.sinks = {name: _LineSink(level) for name, level in LEVELS.items()}
    try:
        yield
    finally:
        _local.sinks = previous
        for sink in sinks.values():
            sink.close()
