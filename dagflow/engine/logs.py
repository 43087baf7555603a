"""Run loggers: `get_run_logger()` records reach the driver and are kept with the run.

Inside a task the record goes through the worker's outbox to the driver; inside a flow body it
goes straight to the flow runner. Either way it becomes a `LogEvent` of the run, is kept on the
`FlowRun`, and is re-emitted on the driver through the `dagflow.runs` logger (with the task name),
where the CLI or the user's own logging configuration shows it.

Logs are bounded wherever they come from, so a task that prints megabytes costs neither the
database nor the driver's memory: one record is cut to `LogLimits.record` characters (with a
marker saying how much was cut), and once a task has logged `LogLimits.task` characters its
further records are dropped and counted; one last record says how many. Text a database cannot
store (lone surrogates, NUL) is repaired where it is emitted.
"""

from __future__ import annotations

import logging
import time
from typing import Any, NamedTuple

from dagflow.core.config import Masker
from dagflow.core.context import current_flow_run, current_task_run
from dagflow.core.reports import LogReport, log_wire
from dagflow.core.runs import LogEvent
from dagflow.core.text import bounded, storable

RUN_LOGGER_NAME = "dagflow.run_logger"
DRIVER_LOGGER = logging.getLogger("dagflow.runs")


class _ShipHandler(logging.Handler):
    """Sends each record to the run that is current in the emitting thread."""

    def emit(self, record: logging.LogRecord) -> None:
        ctx: Any = current_task_run.get() or current_flow_run.get()
        if ctx is None:
            return
        try:
            message = self.format(record)
        except Exception:
            message = str(record.msg)
        ctx.emit_log(record.levelno, message)


_run_logger = logging.getLogger(RUN_LOGGER_NAME)
_run_logger.propagate = False
_run_logger.setLevel(logging.INFO)
_handler = _ShipHandler()
_handler.setFormatter(logging.Formatter("%(message)s"))
_run_logger.addHandler(_handler)


def get_run_logger() -> logging.LoggerAdapter[logging.Logger]:
    """A logger whose records are stored with the current task or flow run.

    Outside a run it returns an ordinary `dagflow` logger, so task code stays testable.
    """
    task = current_task_run.get()
    if task is not None:
        return logging.LoggerAdapter(_run_logger, {"task_name": task.task_name})
    flow = current_flow_run.get()
    if flow is not None:
        return logging.LoggerAdapter(_run_logger, {"flow_name": flow.flow_name})
    return logging.LoggerAdapter(logging.getLogger("dagflow.user"), {})


def reemit(event: LogEvent) -> None:
    """Pass a run's log record to the driver's `dagflow.runs` logger."""
    if not DRIVER_LOGGER.isEnabledFor(event.level):
        return
    where = event.task_name or "flow"
    record = DRIVER_LOGGER.makeRecord(
        DRIVER_LOGGER.name,
        event.level,
        "(worker)",
        0,
        "%s",
        (event.message,),
        None,
        extra={"task_name": where, "run_id": event.run_id, "worker": event.worker},
    )
    record.created = event.time
    DRIVER_LOGGER.handle(record)


class LogLimits(NamedTuple):
    """How much of a task's logging is kept (characters): per record, and per task execution."""

    record: int = 64 * 1024
    task: int = 4 * 1024 * 1024


DEFAULT_LOG_LIMITS = LogLimits()


class TaskLog:
    """Ships one task execution's log records through the worker's outbox, within its limits."""

    __slots__ = ("box", "dropped", "dropped_chars", "index", "limits", "masker", "name", "sent",
                 "topic", "where")  # fmt: skip

    def __init__(
        self,
        box: Any,
        topic: str,
        name: str,
        index: int,
        where: str,
        limits: LogLimits,
        masker: Masker | None = None,
    ) -> None:
        self.box = box
        self.topic = topic
        self.name = name
        self.index = index
        self.where = where
        self.limits = limits
        self.masker = masker  # the run's secret values are replaced before a record leaves
        self.sent = 0
        self.dropped = 0
        self.dropped_chars = 0

    def __call__(self, level: int, message: str) -> None:
        if self.sent >= self.limits.task:
            self.dropped += 1
            self.dropped_chars += len(message)
            return
        if self.masker is not None:  # before cutting: a cut value would show its start
            message = self.masker(message)
        message = storable(bounded(message, self.limits.record))
        self.sent += len(message)
        self._ship(level, message)

    def close(self) -> None:
        """Say how much was dropped, once, when the task execution ends."""
        if self.dropped:
            self._ship(
                logging.WARNING,
                f"[dagflow] {self.dropped:,} log records ({self.dropped_chars:,} characters) "
                f"dropped: this task logged more than its limit of {self.limits.task:,} "
                "characters (DAGFLOW_LOG_MAX_PER_TASK)",
            )
            self.dropped = self.dropped_chars = 0

    def _ship(self, level: int, message: str) -> None:
        record = LogReport(self.name, self.index, level, time.time(), message, self.where)
        self.box.put(self.topic, log_wire(record))
