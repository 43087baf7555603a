"""Run loggers: `get_run_logger()` records reach the driver and are kept with the run.

Inside a task the record goes through the worker's outbox to the driver; inside a flow body it
goes straight to the flow runner. Either way it becomes a `LogEvent` of the run, is kept on the
`FlowRun`, and is re-emitted on the driver through the `dagflow.runs` logger (with the task name),
where the CLI or the user's own logging configuration shows it.
"""

from __future__ import annotations

import logging
from typing import Any

from dagflow.core.context import current_flow_run, current_task_run
from dagflow.core.runs import LogEvent

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
