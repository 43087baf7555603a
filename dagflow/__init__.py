"""dagflow: workflow orchestration on Dask.

Write `@task` functions and a `@flow` that calls them; dagflow compiles the flow into Dask graphs,
runs it on a local or remote Dask cluster, and adds retries, timeouts, recorded states and logs,
validated parameters, and deployments served on cron and interval schedules (`serve`).

This module is the public surface, and only that: importing it defines nothing and starts
nothing. Each public name is loaded from its module when first used (PEP 562), so a worker that
imports dagflow's task wrapper loads none of what it does not run (pydantic, the CLI, the store),
and `import dagflow` costs a fraction of `import distributed`.
"""

from __future__ import annotations

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

if _typing.TYPE_CHECKING:
    from dagflow.core.deployments import Deployment
    from dagflow.core.graph import TaskFuture, allow_failure, unmapped
    from dagflow.core.notify import Notifier
    from dagflow.core.runs import FlowRun, LogEvent, StateEvent, TaskRun
    from dagflow.core.states import StateType, Transition
    from dagflow.decorators import Flow, Task, flow, task
    from dagflow.engine.caching import CacheContext, inputs_hash
    from dagflow.engine.logs import get_run_logger
    from dagflow.engine.pausing import pause
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
        PauseRejected,
        SecretError,
        SettingsError,
        StoreError,
        TaskFailed,
        TaskTimeout,
        UpstreamFailed,
    )
    from dagflow.runtime import get_flow_run, list_flow_runs
    from dagflow.scheduler import serve

_WHERE = {
    "dagflow.core.deployments": ("Deployment",),
    "dagflow.core.graph": ("TaskFuture", "allow_failure", "unmapped"),
    "dagflow.core.notify": ("Notifier",),
    "dagflow.core.runs": ("FlowRun", "LogEvent", "StateEvent", "TaskRun"),
    "dagflow.core.states": ("StateType", "Transition"),
    "dagflow.decorators": ("Flow", "Task", "flow", "task"),
    "dagflow.engine.caching": ("CacheContext", "inputs_hash"),
    "dagflow.engine.logs": ("get_run_logger",),
    "dagflow.engine.pausing": ("pause",),
    "dagflow.errors": (
        "ClusterError",
        "DagflowError",
        "DefinitionError",
        "DeploymentError",
        "FlowCancelled",
        "FlowFailed",
        "FlowTimeout",
        "FutureMisuse",
        "InvalidTransition",
        "ParameterError",
        "PauseRejected",
        "SecretError",
        "SettingsError",
        "StoreError",
        "TaskFailed",
        "TaskTimeout",
        "UpstreamFailed",
    ),
    "dagflow.runtime": ("get_flow_run", "list_flow_runs"),
    "dagflow.scheduler": ("serve",),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}


_SUBMODULES = ("secrets", "variables")  # `dagflow.variables.get(...)` without an import


def __getattr__(name: str) -> _typing.Any:
    if name in _SUBMODULES:
        return _importlib.import_module(f"dagflow.{name}")
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'dagflow' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
    "Notifier",
    "ParameterError",
    "PauseRejected",
    "SecretError",
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
    "pause",
    "serve",
    "task",
    "unmapped",
]
