"""dagflow: workflow orchestration on Dask.

Write `@task` functions and a `@flow` that calls them; dagflow compiles the flow into Dask graphs,
runs it on a local or remote Dask cluster, and adds retries, timeouts, recorded states and logs,
validated parameters, and deployments served on cron and interval schedules (`serve`).

This module is the public surface, and only that: importing it defines nothing and starts
nothing; the engine, the run history and the clusters load when a flow first runs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from dagflow.core.deployments import Deployment
from dagflow.core.graph import TaskFuture, allow_failure, unmapped
from dagflow.core.runs import FlowRun, LogEvent, StateEvent, TaskRun
from dagflow.core.states import StateType, Transition
from dagflow.decorators import Flow, Task, flow, task
from dagflow.engine.caching import CacheContext, inputs_hash
from dagflow.engine.logs import get_run_logger
from dagflow.errors import (
    ClusterError,
    DagflowError,
    DefinitionError,
    DeploymentError,
    FlowCancelled,
    FlowFailed,
    FlowTimeout,
    FutureMisuse,
    InvalidTransition,
    ParameterError,
    SettingsError,
    StoreError,
    TaskFailed,
    TaskTimeout,
    UpstreamFailed,
)
from dagflow.runtime import get_flow_run, list_flow_runs
from dagflow.scheduler import serve

__all__ = [
    "CacheContext",
    "ClusterError",
    "DagflowError",
    "DefinitionError",
    "Deployment",
    "DeploymentError",
    "Flow",
    "FlowCancelled",
    "FlowFailed",
    "FlowRun",
    "FlowTimeout",
    "FutureMisuse",
    "InvalidTransition",
    "LogEvent",
    "ParameterError",
    "SettingsError",
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
    "serve",
    "task",
    "unmapped",
]
