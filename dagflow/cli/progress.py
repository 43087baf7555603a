"""What `dagflow run` shows while a run is going: its start, task counts, logs, retries, failures.

`RunProgress` is an `EventSink`. It keeps every task's latest state, so a retried task or one
re-run after a lost worker counts once, and shows the counts as a live rich bar on a terminal or
as plain lines otherwise (a pipe, a CI log). It prints the run's log records and its tasks'
retries and failures itself, in time order: records reach the driver by different roads (a
task's through its worker's outbox, the flow body's at once), so lines wait in a buffer sorted by
the time they happened. A line waits `ORDER_WINDOW`; a line of the flow body's also waits until
every task that had not ended when it came has ended (at most `FLOW_LINE_HOLD`): a body that
logs after `.result()` saw that task end, and the task's own records reach the driver before
its end does, so they print first. Failures are red, retries yellow. The engine calls `handle`
from its event thread and from the flow's threads, so the state is guarded by one lock; a small
thread prints what is due.
`setup_logging` sends dagflow's other log records to the same console (the run's records, which
the engine also re-emits through `dagflow.runs`, are left to `RunProgress`); only the CLI calls
it (the library never configures logging).
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
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
from rich.text import Text

from dagflow.cli.output import STATE_STYLE, clock
from dagflow.core.keys import logical
from dagflow.core.runs import FlowRunStarted, LogEvent, RunEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.core.text import inert

S = StateType
DONE = frozenset({S.COMPLETED, S.CACHED})
RUNNING = frozenset({S.RUNNING, S.RETRYING})
FAILED = frozenset({S.FAILED, S.TIMED_OUT, S.UPSTREAM_FAILED, S.CRASHED})
SHOWN = frozenset({S.RETRYING, S.FAILED, S.TIMED_OUT, S.CRASHED})  # task states printed
SHOWN_PER_STATE = 10  # lines per kind of setback; the rest are only counted
ORDER_WINDOW = 0.3  # seconds a line waits for earlier ones that travel a longer road
FLOW_LINE_HOLD = 3.0  # at most this long a flow body's line waits for running tasks to end
LEVEL_STYLE = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "bold red", "DEBUG": "dim"}


@dataclass(frozen=True, slots=True)
class Counts:
    """How many of a run's tasks are in each kind of state."""

    total: int = 0
    done: int = 0
    running: int = 0
    failed: int = 0
    cancelled: int = 0

    def text(self, final: bool = False) -> str:
        """`3/10 done, 2 running, 1 failed`; at the end (`final`) without the running ones."""
        out = f"{self.done}/{self.total} done"
        if not final or self.running:
            out += f", {self.running} running"
        if not final or self.failed or not self.cancelled:
            out += f", {self.failed} failed"
        if self.cancelled:
            out += f", {self.cancelled} cancelled"
        return out


@dataclass(slots=True, order=True)
class _Line:
    """A line waiting for its turn: ordered by when it happened (then by arrival)."""

    time: float
    seq: int
    arrived: float = field(compare=False)
    line: Text = field(compare=False)
    waits: set[str] | None = field(compare=False)  # a flow line: tasks it waits to see end


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
        self._shown: dict[StateType, int] = {}
        self._lock = threading.Lock()
        self._last_line = 0.0
        self._last_shown = Counts()
        self._bar: Progress | None = None
        self._bar_task: TaskID | None = None
        self._pending: list[_Line] = []  # a heap: the earliest line first
        self._seq = 0
        self._stop = threading.Event()
        self._printer: threading.Thread | None = None

    # ------------------------------------------------------------ context: bar and printer

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
        self._stop.clear()
        self._printer = threading.Thread(target=self._print_due, name="dagflow-progress")
        self._printer.daemon = True
        self._printer.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._printer is not None:
            self._printer.join()
            self._printer = None
        self._flush_lines()
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    # ------------------------------------------------------------ EventSink

    def handle(self, events: Sequence[RunEvent]) -> None:
        lines: list[str | Text] = []
        now = time.monotonic()
        with self._lock:
            for ev in events:
                if isinstance(ev, StateEvent):
                    lines.extend(self._state(ev))
                elif isinstance(ev, LogEvent):
                    self._queue(ev.time, now, self._log_line(ev), flow_line=ev.task_key is None)
                elif isinstance(ev, FlowRunStarted):
                    lines.extend(self._started(ev))
            self._counts = self._count()
            counts = self._counts
            due = now - self._last_line >= self.interval
            if not self.live and due and counts != self._last_shown and counts.total:
                lines.append(f"progress: {counts.text()}")
                self._last_line = now
                self._last_shown = counts
        for line in lines:
            self.echo(line)
        self._refresh(counts)

    def flush(self, timeout: float | None = None) -> None:
        """Nothing to make durable: lines print when their turn comes (and all at the end)."""

    def _flush_lines(self) -> None:
        """Print every line still waiting, in time order (the run is over)."""
        with self._lock:
            lines = [heapq.heappop(self._pending).line for _ in range(len(self._pending))]
        for line in lines:
            self.echo(line)

    def counts(self) -> Counts:
        with self._lock:
            return self._counts

    def echo(self, line: str | Text) -> None:
        """Print a line (above the live bar, if there is one)."""
        shown = inert(line) if isinstance(line, str) else line  # Text lines are made inert
        self.console.print(shown, markup=False, highlight=False, soft_wrap=True)

    # ------------------------------------------------------------ ordered lines

    def _queue(self, at: float, arrived: float, line: Text, flow_line: bool = False) -> None:
        self._seq += 1
        waits = (
            {k for k, state in self._states.items() if not state.is_final} if flow_line else None
        )
        heapq.heappush(self._pending, _Line(at, self._seq, arrived, line, waits))

    def _print_due(self) -> None:
        while not self._stop.wait(0.1):
            self._print_lines(time.monotonic())

    def _print_lines(self, now: float) -> None:
        """Print, in time order, the waiting lines whose turn has come; none while an earlier
        line still waits."""
        due: list[Text] = []
        with self._lock:
            while self._pending and self._ready(self._pending[0], now):
                due.append(heapq.heappop(self._pending).line)
        for line in due:
            self.echo(line)

    def _ready(self, line: _Line, now: float) -> bool:
        if now < line.arrived + ORDER_WINDOW:
            return False
        if not line.waits or now >= line.arrived + FLOW_LINE_HOLD:
            return True
        states = self._states
        line.waits.difference_update([k for k in line.waits if states[k].is_final])
        return not line.waits

    def _log_line(self, ev: LogEvent) -> Text:
        """`12:00:01 INFO    [task] message`."""
        level = logging.getLevelName(ev.level)
        line = Text(f"{clock(ev.time)[:8]} ", style="dim")
        line.append(f"{level:<7}", style=LEVEL_STYLE.get(level, ""))
        line.append(f" [{inert(ev.task_name or 'flow')}] {inert(ev.message)}")
        return line

    def _setback_line(self, ev: StateEvent) -> Text:
        """`12:00:01 FAILED  key: OSError: ...`, in the state's colour."""
        style = STATE_STYLE.get(ev.to_state.value, "")
        line = Text(f"{clock(ev.time)[:8]} ", style="dim")
        after = (
            f" (attempt {ev.attempt})" if ev.attempt > 1 and ev.to_state is not S.RETRYING else ""
        )
        message = inert(ev.message.strip().splitlines()[0]) if ev.message.strip() else ""
        key = logical(ev.task_key) if ev.task_key else ""
        line.append(f"{ev.to_state.value:<7} {key}{after}: {message}", style=style)
        return line

    # ------------------------------------------------------------ internals

    def _started(self, ev: FlowRunStarted) -> list[str | Text]:
        if self.run_id is None:
            self.run_id = ev.run_id
            self.flow_name = ev.flow_name
            self.dashboard_link = ev.dashboard_link
            return [
                f"flow {ev.flow_name!r} run {ev.run_id} on cluster {self.cluster}",
                f"dashboard: {ev.dashboard_link or '(not available)'}",
            ]
        return [f"subflow {ev.flow_name!r} run {ev.run_id}"]

    def _state(self, ev: StateEvent) -> list[str | Text]:
        if ev.task_key is None:
            if ev.run_id != self.run_id:
                return []
            if ev.to_state in (S.RUNNING, S.RETRYING, S.CANCELLING):
                note = f": {ev.message}" if ev.message else ""
                return [f"run {ev.run_id} {ev.to_state}{note}"]
            return []
        self._states[logical(ev.task_key)] = ev.to_state  # a flow retry's row replaces the last
        if ev.to_state in SHOWN:
            shown = self._shown.get(ev.to_state, 0) + 1
            self._shown[ev.to_state] = shown
            now = time.monotonic()
            if shown <= SHOWN_PER_STATE:
                self._queue(ev.time, now, self._setback_line(ev))
            elif shown == SHOWN_PER_STATE + 1:
                more = Text(
                    f"{clock(ev.time)} (more {ev.to_state} tasks are counted, not shown: "
                    f"dagflow runs show {ev.run_id[:12]} --state {ev.to_state})",
                    style="dim",
                )
                self._queue(ev.time, now, more)
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
            completed=counts.done + counts.failed,  # cancelled tasks are not progress
            running=counts.running,
            failed=counts.failed,
        )


# ---------------------------------------------------------------- logging for humans


class _NotRunRecords(logging.Filter):
    """Drop the run records the engine re-emits through `dagflow.runs`: RunProgress shows them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("dagflow.runs")


def setup_logging(console: Console, *, live: bool, level: int = logging.INFO) -> None:
    """Show dagflow's own log records on `console` (the runs' records are RunProgress's); for
    the CLI only."""
    handler: logging.Handler = (
        RichHandler(console=console, show_path=False, log_time_format="[%X]")
        if live
        else _PlainHandler(console)
    )
    handler.addFilter(_NotRunRecords())
    from dagflow.workerprocess import quiet_cancellations

    quiet_cancellations()  # workers in this process (local-threads) cancel tasks on Ctrl-C
    logger = logging.getLogger("dagflow")
    for old in [h for h in logger.handlers if isinstance(h, (RichHandler, _PlainHandler))]:
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


class _PlainHandler(logging.Handler):
    """`HH:MM:SS LEVEL   message`, unwrapped, for a pipe or a CI log."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.console.print(self.format(record), markup=False, highlight=False, soft_wrap=True)
        except Exception:
            self.handleError(record)
