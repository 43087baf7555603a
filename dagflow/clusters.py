"""Naming and opening Dask clusters: `local`, `local-threads`, or a scheduler address.

A cluster named once is opened once per Python process and reused by every later run (a notebook
must not pay a cluster start per run); everything opened here is closed at interpreter exit.
Local clusters and their dashboards listen on 127.0.0.1 only.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from dagflow.errors import ClusterError

log = logging.getLogger(__name__)

DEFAULT_CLUSTER = "local"
ENV_CLUSTER = "DAGFLOW_CLUSTER"


@dataclass(frozen=True, slots=True)
class ClusterHandle:
    """An open cluster: the client dagflow submits through, and what to show the user."""

    name: str
    client: Any  # distributed.Client
    cluster: Any  # distributed.deploy.Cluster | None (None when connected to an address)

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    @property
    def dashboard_link(self) -> str | None:
        try:
            return str(self.client.dashboard_link)
        except Exception:
            return None


_open: dict[str, ClusterHandle] = {}
_lock = threading.Lock()


def resolve_name(cli: str | None = None, flow: str | None = None) -> str:
    """Which cluster to use: the CLI flag, then DAGFLOW_CLUSTER, then the flow's, then local."""
    for candidate in (cli, os.environ.get(ENV_CLUSTER), flow):
        if candidate and candidate.strip():
            return candidate.strip()
    return DEFAULT_CLUSTER


def get_cluster(name: str) -> ClusterHandle:
    """The open cluster called `name`, opening it on first use."""
    handle = _open.get(name)
    if handle is not None and handle.client.status in ("running", "connecting"):
        return handle
    with _lock:
        handle = _open.get(name)
        if handle is not None and handle.client.status in ("running", "connecting"):
            return handle
        handle = _open[name] = _connect(name)
        return handle


def _local_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _connect(name: str) -> ClusterHandle:
    from distributed import Client, LocalCluster

    if name in ("local", "local-threads"):
        processes = name == "local"
        try:
            cluster = LocalCluster(
                n_workers=_local_workers(),
                threads_per_worker=1,
                processes=processes,
                # in-process workers talk over inproc://; worker processes over loopback TCP
                **({"host": "127.0.0.1"} if processes else {}),
                dashboard_address="127.0.0.1:8787",
                scheduler_kwargs={"preload": ["dagflow.dashboard"]} if _has_dashboard() else {},
            )
        except Exception as exc:
            raise ClusterError(f"could not start the {name!r} cluster: {exc}") from exc
        client = Client(cluster, set_as_default=False)
        return ClusterHandle(name, client, cluster)
    if "://" in name:
        try:
            client = Client(name, set_as_default=False, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ClusterError(f"cannot reach the Dask scheduler at {name}: {exc}") from None
        return ClusterHandle(name, client, None)
    raise ClusterError(
        f"unknown cluster {name!r}: use 'local', 'local-threads' or a scheduler address "
        "such as tcp://127.0.0.1:8786"
    )


def _has_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec("dagflow.dashboard") is not None


def close_all() -> None:
    """Close every cluster this process opened (also run at exit)."""
    with _lock:
        handles = list(_open.values())
        _open.clear()
    for handle in handles:
        try:
            handle.client.close()
            if handle.cluster is not None:
                handle.cluster.close()
        except Exception:
            log.debug("error closing cluster %s", handle.name, exc_info=True)


atexit.register(close_all)
