"""Who is running right now: the flow run being built on the driver, the task run on a worker.

Two context variables, set by the engine, read by `Task.__call__` (to tell "inside a flow" from
"plain call") and by `get_run_logger()`. The engine also registers itself here once, so the pure
definitions can hand a call over to it without importing it.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from dagflow.core.definitions import Flow, Task
    from dagflow.core.graph import RunGraph


@dataclass(frozen=True, slots=True)
class TaskRunContext:
    """The task run a worker thread is executing (set by the task wrapper)."""

    run_id: str
    task_key: str
    task_name: str
    attempt: int
    emit_log: Any  # Callable[[int, str], None]: ships a record to the driver


@dataclass(frozen=True, slots=True)
class FlowRunContext:
    """The flow run whose body is executing on the driver."""

    run_id: str
    flow_name: str
    graph: RunGraph
    runner: Any  # the engine's FlowRunner
    emit_log: Any  # Callable[[int, str], None]


current_flow_run: ContextVar[FlowRunContext | None] = ContextVar("dagflow_flow_run", default=None)
current_task_run: ContextVar[TaskRunContext | None] = ContextVar("dagflow_task_run", default=None)


class Engine(Protocol):
    """What the definitions need from the engine."""

    def run_flow(
        self, flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...

    def resume_flow(self, flow: Flow[..., Any], run_id: str, *, force: bool = False) -> Any: ...

    def run_task_inline(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any: ...


_engine: list[Engine] = []


def register_engine(engine: Engine) -> None:
    _engine[:] = [engine]


def get_engine() -> Engine:
    if not _engine:
        import dagflow.engine  # noqa: F401  (registers itself on import)
    return _engine[0]
