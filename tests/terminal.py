"""Run a command in a pseudo-terminal of 80x24 and read the screen it leaves, as a person would.

The command gets a real pty as its controlling terminal (so rich draws its live bar, colours and
all), and `pyte` plays the terminal: it keeps the 24 lines on screen and each character's colour.
Ctrl-C is typed into the terminal (the byte 0x03), so the kernel sends SIGINT to the whole
foreground process group, worker processes included, exactly as at a keyboard. Every wait is on
something seen on the screen or on the process's exit, with a deadline; no fixed sleeps.
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyte

COLUMNS, ROWS = 80, 24
CTRL_C = b"\x03"


@dataclass(repr=False)
class Terminal:
    """A command running in an 80x24 pseudo-terminal."""

    argv: Sequence[str]
    cwd: Path
    env: dict[str, str]
    pid: int = 0
    fd: int = -1
    screen: pyte.Screen = field(default_factory=lambda: pyte.Screen(COLUMNS, ROWS))
    transcript: bytearray = field(default_factory=bytearray)
    exit_code: int | None = None

    def __post_init__(self) -> None:
        self.stream = pyte.ByteStream(self.screen)
        pid, fd = pty.fork()
        if pid == 0:  # the child: the command, with the pty as its terminal
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
                os.chdir(self.cwd)
                os.execvpe(self.argv[0], list(self.argv), self.env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd

    # ------------------------------------------------------------------ reading

    def _read(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            data = b""
        if data:
            self.transcript.extend(data)
            self.stream.feed(data)
        else:
            self._reap(block=True)

    def _reap(self, block: bool) -> None:
        if self.exit_code is not None:
            return
        pid, status = os.waitpid(self.pid, 0 if block else os.WNOHANG)
        if pid:
            self.exit_code = os.waitstatus_to_exitcode(status)

    def wait_for(self, text: str, timeout: float) -> None:
        """Read until `text` is in what the command printed; fail (with the screen) at the
        deadline or if the command ends first."""
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.exit_code is None, f"exited {self.exit_code} before {text!r}:\n{self}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout}s:\n{self}"
            self._read(0.2)
            self._reap(block=False)

    def wait_exit(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.exit_code is None:
            assert time.monotonic() < deadline, f"still running after {timeout}s:\n{self}"
            self._read(0.2)
            self._reap(block=False)
        while self._drain():
            pass
        return self.exit_code

    def _drain(self) -> bool:
        try:
            ready, _, _ = select.select([self.fd], [], [], 0)
            data = os.read(self.fd, 65536) if ready else b""
        except OSError:
            data = b""
        if data:
            self.transcript.extend(data)
            self.stream.feed(data)
        return bool(data)

    # ------------------------------------------------------------------ typing

    def ctrl_c(self) -> None:
        os.write(self.fd, CTRL_C)

    # ------------------------------------------------------------------ what is seen

    @property
    def output(self) -> str:
        """Everything the command wrote, as text (escape sequences included)."""
        return self.transcript.decode("utf-8", "replace")

    def lines(self) -> list[str]:
        """The screen's lines, without the empty ones at the bottom."""
        rows = [row.rstrip() for row in self.screen.display]
        while rows and not rows[-1]:
            rows.pop()
        return rows

    def colour_of(self, text: str) -> str:
        """The foreground colour of the first character of `text` on the screen (pyte's names:
        ANSI yellow is "brown")."""
        for y, row in enumerate(self.screen.display):
            x = row.find(text)
            if x >= 0:
                return str(self.screen.buffer[y][x].fg)
        raise AssertionError(f"{text!r} is not on the screen:\n{self}")

    def close(self) -> None:
        """Stop the command (its process group) if it still runs, and free the terminal."""
        if self.exit_code is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(block=True)
        os.close(self.fd)

    def __str__(self) -> str:
        return "the screen:\n" + "\n".join(f"|{line}" for line in self.lines())

    __repr__ = __str__  # what an assertion shows

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
