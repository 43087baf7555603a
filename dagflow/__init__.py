"""dagflow: workflow orchestration on Dask.

Write `@task` functions and a `@flow` that calls them; dagflow compiles the flow into Dask graphs,
runs it on a local or remote Dask cluster, and adds retries, timeouts, recorded states and logs,
and validated parameters.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dagflow.core.definitions import Flow, Task, flow, task
from dagflow.core.graph import TaskFuture, allow_failure, unmapped
from dagflow.core.runs import FlowRun, LogEvent, StateEvent, TaskRun
from dagflow.core.states import StateType, Transition
from dagflow.engine import api as _engine_api  # noqa: F401  (registers the engine)
from dagflow.engine.caching import CacheContext, inputs_hash
from dagflow.engine.logs import get_run_logger
from dagflow.errors import (
    ClusterError,
    DagflowError,
    DefinitionError,
    FlowCancelled,
    FlowFailed,
    FlowTimeout,
    FutureMisuse,
    InvalidTransition,
    ParameterError,
    StoreError,
    TaskFailed,
    TaskTimeout,
    UpstreamFailed,
)
from dagflow.orchestrator import install as _install_store
from dagflow.store import get_flow_run, list_flow_runs

_install_store()

__all__ = [
    "CacheContext",
    "ClusterError",
    "DagflowError",
    "DefinitionError",
    "Flow",
    "FlowCancelled",
    "FlowFailed",
    "FlowRun",
    "FlowTimeout",
    "FutureMisuse",
    "InvalidTransition",
    "LogEvent",
    "ParameterError",
    "StateEvent",
    "StateType",
    "StoreError",
    "Task",
    "TaskFailed",
    "TaskFuture",
    "TaskRun",
    "TaskTimeout",
    "Transition",
    "UpstreamFailed",
    "__version__",
    "allow_failure",
    "flow",
    "get_flow_run",
    "get_run_logger",
    "inputs_hash",
    "list_flow_runs",
    "task",
    "unmapped",
]
