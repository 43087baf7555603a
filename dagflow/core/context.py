"""Who is running right now: the flow run being built on the driver, the task run on a worker.

Two context variables. The engine's flow runner sets `current_flow_run` in the thread that runs a
flow body, and the task wrapper sets `current_task_run` around a task's function. They are read by
task calls (inside a flow a call adds to the run's graph; outside it runs here), by subflow calls
(a flow called inside a flow runs as a child of the current run), by `get_run_logger()`, and by
`dagflow.variables` / `dagflow.secrets` (each context carries the run's `RunConfig`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagflow.core.config import EMPTY, RunConfig

if TYPE_CHECKING:
    from dagflow.core.graph import RunGraph

EmitLog = Callable[[int, str], None]  # ships one record (level, message) to the run's driver


@dataclass(frozen=True, slots=True)
class TaskRunContext:
    """The task run a worker thread is executing (set by the task wrapper)."""

    run_id: str
    task_key: str
    task_name: str
    attempt: int
    emit_log: EmitLog
    config: RunConfig = EMPTY


@dataclass(frozen=True, slots=True)
class FlowRunContext:
    """The flow run whose body is executing on the driver."""

    run_id: str
    flow_name: str
    graph: RunGraph
    runner: Any  # the engine's FlowRunner: a subflow becomes its child
    emit_log: EmitLog
    config: RunConfig = EMPTY


current_flow_run: ContextVar[FlowRunContext | None] = ContextVar("dagflow_flow_run", default=None)
current_task_run: ContextVar[TaskRunContext | None] = ContextVar("dagflow_task_run", default=None)
