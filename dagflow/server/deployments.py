"""What the server shows and does with deployments, for the API and the pages alike.

- `flow_of(deployment)`: the deployment's flow, loaded from its entrypoint as `dagflow
  deployments run` loads it (the server validates a Run form's parameters with the very code the
  CLI uses, `scheduler.manual.create_run`). Loaded once per version of the file: a file is
  imported again only when its modification time or size changed. Importing runs the user's
  module, so it happens under a lock, with `scheduler.child.LOADING` set (a file calling
  `serve()` at import time does not start a service inside the server). The entrypoint comes from
  the database (what `dagflow serve` registered), never from a request.

Schedules in words and next ticks are in `schedule_words.py` (no user code involved).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagflow.core.deployments import Deployment
from dagflow.core.flow import FlowDefinition
from dagflow.errors import DagflowError, UsageError

Flow = FlowDefinition[..., Any]

_lock = threading.Lock()
_loaded: dict[str, tuple[tuple[int, int] | None, Flow]] = {}


def _version(entrypoint: str) -> tuple[int, int] | None:
    """(mtime, size) of the entrypoint's file; None for a module path (imported once)."""
    target = entrypoint.rpartition(":")[0]
    if not (target.endswith(".py") or "/" in target):
        return None
    try:
        st = Path(target).stat()
    except OSError:
        return (-1, -1)  # gone: loading says so in one line
    return (st.st_mtime_ns, st.st_size)


def flow_of(deployment: Deployment) -> Flow:
    """The flow `deployment` runs, loaded from its entrypoint (`UsageError` if it cannot be)."""
    from dagflow.entrypoints import load_flow
    from dagflow.scheduler import child

    entrypoint = deployment.entrypoint
    with _lock:
        version = _version(entrypoint)
        cached = _loaded.get(entrypoint)
        if cached is not None and cached[0] == version:
            return cached[1]
        child.LOADING = True
        try:
            flow = load_flow(entrypoint)
        finally:
            child.LOADING = False
        if flow.name != deployment.flow_name:
            raise UsageError(
                f"{entrypoint} is now flow {flow.name!r}, not {deployment.flow_name!r}"
            )
        _loaded[entrypoint] = (version, flow)
        return flow


@dataclass(frozen=True, slots=True)
class ParameterSchema:
    """A deployment's parameter schema, or why it could not be read here."""

    schema: dict[str, Any] | None
    error: str | None


def parameter_schema(deployment: Deployment) -> ParameterSchema:
    try:
        return ParameterSchema(flow_of(deployment).parameters_schema(), None)
    except DagflowError as exc:
        return ParameterSchema(None, str(exc))
