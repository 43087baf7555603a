"""The scheduler: deployments, and the `dagflow serve` process that runs them on time.

```
definitions.py  Deployment values from Python, the command line or a YAML file, checked
planning.py     which ticks to create now (pure: the instant is passed in)
service.py      Server: the serve loop (ticks, claims, limits, child processes, signals)
child.py        the child process that runs one claimed run under its id
templates.py    parameters filled from an event (`{{ event.path }}`, Jinja2 sandbox)
watchers.py     Watcher: one trigger watched in a thread; files.py, rows.py, flowruns.py
webhooks.py     a signed webhook call recorded as events (the server's route calls it)
```

`serve(*deployments)` is `dagflow serve` for Python: it loads and checks every deployment's flow
from its entrypoint (as the child processes will), registers them, starts the shared LocalCluster
when a deployment runs on the default `local` cluster, and serves until Ctrl-C.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from dagflow.core.deployments import Deployment
from dagflow.errors import DeploymentError

if TYPE_CHECKING:
    from dagflow.core.flow import FlowDefinition
    from dagflow.scheduler.service import Served

log = logging.getLogger("dagflow.scheduler")
T = TypeVar("T")

__all__ = ["serve", "serve_loaded"]


def serve(*deployments: Deployment, limit: int = 10) -> int:
    """Serve `deployments` until Ctrl-C (see `dagflow serve`); returns 0 once stopped."""
    from dagflow.scheduler import child
    from dagflow.scheduler.definitions import load_checked

    if child.LOADING or _in_child_process():
        # a file calling serve() without `if __name__ == "__main__":` is imported again by the
        # processes serve starts (a run's child, the cluster's workers): serve only once
        log.debug("serve() called while a child process imports the flow's file: ignored")
        return 0
    if not deployments:
        raise DeploymentError("serve: give at least one deployment (flow.to_deployment(...))")
    for dep in deployments:
        if not isinstance(dep, Deployment):
            raise DeploymentError(
                f"serve: expected deployments (flow.to_deployment(...)), got {type(dep).__name__}"
            )
    loaded = []
    child.LOADING = True  # the entrypoint's file may call serve() at import: not again
    try:
        loaded = [load_checked(dep) for dep in deployments]
    finally:
        child.LOADING = False
    return serve_loaded(loaded, limit=limit)


def serve_loaded(
    loaded: Sequence[tuple[Deployment, FlowDefinition[..., Any]]], *, limit: int = 10
) -> int:
    """Serve deployments whose flows are loaded and checked; returns 0 once stopped."""
    from dagflow import runtime
    from dagflow import settings as dagflow_settings
    from dagflow.scheduler.definitions import check_cycles
    from dagflow.scheduler.service import Server

    names = [dep.full_name for dep, _ in loaded]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DeploymentError(f"deployment {twice[0]!r} is given twice")
    check_cycles(dep for dep, _ in loaded)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise DeploymentError(f"serve: limit must be an integer >= 1, got {limit!r}")
    current = dagflow_settings.load()
    store = runtime.default_store(current)
    served = _clusters(loaded, current.cluster)
    return Server(store, served, limit=limit).run()


def _clusters(
    loaded: Sequence[tuple[Deployment, FlowDefinition[..., Any]]], env: str | None
) -> list[Served]:
    """Each deployment's cluster; the default `local` one is ONE LocalCluster started here."""
    from dagflow.clusters import DEFAULT_CLUSTER, get_cluster, resolve_name
    from dagflow.clusters.mainguard import reimport_safe
    from dagflow.scheduler.service import Served

    served = []
    shared: str | None = None
    for dep, flow in loaded:
        name = resolve_name(dep.cluster, flow.options.cluster, env)
        if name == DEFAULT_CLUSTER:
            if shared is None:
                with reimport_safe():  # serve() ignores the calls of the workers' re-import
                    handle = _start_ignoring_ctrl_c(lambda: get_cluster(DEFAULT_CLUSTER))
                shared = handle.address
                log.info("shared local cluster at %s (dashboard %s)", shared, handle.dashboard_link)
            name = shared
        served.append(Served(dep, name))
    return served


def _start_ignoring_ctrl_c(start: Callable[[], T]) -> T:
    """Start the shared cluster with SIGINT ignored, so that its worker processes (in this
    terminal's process group) ignore it too: a first Ctrl-C lets running runs finish."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return start()
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return start()
    finally:
        signal.signal(signal.SIGINT, old)


def _in_child_process() -> bool:
    """True in a process that multiprocessing started (it imports the main file again)."""
    import multiprocessing

    # `_inheriting` is set while a spawned process imports the main file (multiprocessing's
    # own check for a missing `if __name__ == "__main__":` reads it too)
    inheriting = getattr(multiprocessing.current_process(), "_inheriting", False)
    return bool(inheriting) or multiprocessing.parent_process() is not None
