"""What `dagflow run` shows while a run is going: task counts, the run's start, its task logs.

`RunProgress` is an `EventSink`. It keeps every task's latest state, so a retried task or one
re-run after a lost worker counts once, and shows the counts as a live rich bar on a terminal or
as plain lines otherwise (a pipe, a CI log). The engine calls it from its event thread and from
the flow's threads, so its state is guarded by one lock. `setup_logging` sends dagflow's loggers,
including task logs the engine re-emits on the driver through `dagflow.runs`, to the same console;
only the CLI calls it (the library never configures logging).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from dagflow.core.runs import FlowRunStarted, RunEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.core.text import inert

S = StateType
DONE = frozenset({S.COMPLETED, S.CACHED})
RUNNING = frozenset({S.RUNNING, S.RETRYING})
FAILED = frozenset({S.FAILED, S.TIMED_OUT, S.UPSTREAM_FAILED, S.CRASHED})
SHOWN_FAILURES = 10  # task failures announced one by one; the rest are only counted


@dataclass(frozen=True, slots=True)
class Counts:
    """How many of a run's tasks are in each kind of state."""

    total: int = 0
    done: int = 0
    running: int = 0
    failed: int = 0
    cancelled: int = 0

    def text(self) -> str:
        out = f"{self.done}/{self.total} done, {self.running} running, {self.failed} failed"
        if self.cancelled:
            out += f", {self.cancelled} cancelled"
        return out


class RunProgress:
    """An event sink that shows one flow run's progress (and its subflows' tasks) to a person."""

    def __init__(self, console: Console, *, live: bool, cluster: str, interval: float = 2.0):
        self.console = console
        self.live = live
        self.cluster = cluster
        self.interval = interval
        self.run_id: str | None = None
        self.flow_name: str | None = None
        self.dashboard_link: str | None = None
        self._states: dict[str, StateType] = {}
        self._counts = Counts()
        self._announced_failures = 0
        self._lock = threading.Lock()
        self._last_line = 0.0
        self._last_shown = Counts()
        self._bar: Progress | None = None
        self._bar_task: TaskID | None = None

    # ------------------------------------------------------------ context: the live bar

    def __enter__(self) -> RunProgress:
        if self.live:
            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[running]} running, {task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bar_task = self._bar.add_task(
                f"starting cluster {self.cluster}", total=None, running=0, failed=0
            )
            self._bar.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # ------------------------------------------------------------ EventSink

    def handle(self, events: Sequence[RunEvent]) -> None:
        lines: list[str] = []
        with self._lock:
            for ev in events:
                if type(ev) is FlowRunStarted:
                    lines.extend(self._started(ev))
                elif type(ev) is StateEvent:
                    lines.extend(self._state(ev))
            self._counts = self._count()
            counts = self._counts
            due = time.monotonic() - self._last_line >= self.interval
            if not self.live and due and counts != self._last_shown and counts.total:
                lines.append(f"progress: {counts.text()}")
                self._last_line = time.monotonic()
                self._last_shown = counts
        for line in lines:
            self.echo(line)
        self._refresh(counts)

    def flush(self, timeout: float | None = None) -> None:
        """Nothing is queued: every batch is shown as it arrives."""

    def counts(self) -> Counts:
        with self._lock:
            return self._counts

    def echo(self, line: str) -> None:
        """Print a line (above the live bar, if there is one)."""
        self.console.print(inert(line), markup=False, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------ internals

    def _started(self, ev: FlowRunStarted) -> list[str]:
        if self.run_id is None:
            self.run_id = ev.run_id
            self.flow_name = ev.flow_name
            self.dashboard_link = ev.dashboard_link
            return [
                f"flow {ev.flow_name!r} run {ev.run_id} on cluster {self.cluster}",
                f"dashboard: {ev.dashboard_link or '(not available)'}",
            ]
        return [f"subflow {ev.flow_name!r} run {ev.run_id}"]

    def _state(self, ev: StateEvent) -> list[str]:
        if ev.task_key is None:
            if ev.run_id != self.run_id:
                return []
            if ev.to_state in (S.RUNNING, S.RETRYING, S.CANCELLING):
                note = f": {ev.message}" if ev.message else ""
                return [f"run {ev.run_id} {ev.to_state}{note}"]
            return []
        self._states[ev.task_key] = ev.to_state
        if ev.to_state in FAILED and ev.to_state is not S.UPSTREAM_FAILED:
            self._announced_failures += 1
            if self._announced_failures <= SHOWN_FAILURES:
                return [f"task {ev.task_name!r} [{ev.task_key}] {ev.to_state}: {ev.message}"]
        return []

    def _count(self) -> Counts:
        done = running = failed = cancelled = 0
        for state in self._states.values():
            if state in DONE:
                done += 1
            elif state in RUNNING:
                running += 1
            elif state in FAILED:
                failed += 1
            elif state is S.CANCELLED:
                cancelled += 1
        return Counts(len(self._states), done, running, failed, cancelled)

    def _refresh(self, counts: Counts) -> None:
        bar, task_id = self._bar, self._bar_task
        if bar is None or task_id is None:
            return
        description = f"{self.flow_name}" if self.flow_name else f"starting cluster {self.cluster}"
        bar.update(
            task_id,
            description=description,
            total=counts.total or None,
            completed=counts.done + counts.failed + counts.cancelled,
            running=counts.running,
            failed=counts.failed,
        )


# ---------------------------------------------------------------- logging for humans


class TaskFormatter(logging.Formatter):
    """`[task] message` for records that carry a task name (the engine's re-emitted logs)."""

    def __init__(self, plain: bool) -> None:
        fmt = "%(asctime)s %(levelname)-7s %(message)s" if plain else "%(message)s"
        super().__init__(fmt, datefmt="%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:
        task_name = getattr(record, "task_name", None)
        if task_name:
            record.message = f"[{task_name}] {record.message}"
        record.message = inert(record.message)  # stored text never drives the terminal
        return super().formatMessage(record)


class ConsoleHandler(logging.Handler):
    """Writes formatted records to a rich console as plain, unwrapped lines."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)


def setup_logging(console: Console, *, live: bool, level: int = logging.INFO) -> None:
    """Show dagflow's log records (task logs included) on `console`; for the CLI only."""
    handler: logging.Handler
    if live:
        handler = RichHandler(console=console, show_path=False, log_time_format="[%X]")
    else:
        handler = ConsoleHandler(console)
    handler.setFormatter(TaskFormatter(plain=not live))
    logger = logging.getLogger("dagflow")
    for old in [h for h in logger.handlers if isinstance(h, (RichHandler, ConsoleHandler))]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
