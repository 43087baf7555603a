"""Opening Dask clusters: a profile becomes an open `ClusterHandle` (a client, maybe a cluster).

`get_cluster(name)` resolves a name (see `names.py`) and opens it: it connects to a scheduler
address, or starts the cluster a profile describes (`LocalCluster`, SSH, jobqueue, Kubernetes, any
`Cluster` class), scales it, and connects a client. A cluster is opened once per Python process
and reused by every later run that names it (a notebook must not pay a cluster start per run);
everything opened here is closed at interpreter exit, or before by `closing.close_all()`. Local
clusters and their dashboards listen on 127.0.0.1 only unless a profile says otherwise; their
worker processes leave Ctrl-C to the driver (`dagflow.workerprocess`), and are not started from
a script's unguarded top level (`mainguard.py`). Whatever goes wrong is one `ClusterError` line
(connecting to a running scheduler: `connecting.py`).
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dagflow.clusters.connecting import connect
from dagflow.clusters.mainguard import refuse_unguarded_spawn
from dagflow.clusters.names import find_profile
from dagflow.clusters.profiles import (
    JOBQUEUE_SYSTEMS,
    AddressProfile,
    ClassProfile,
    ClusterProfile,
    JobqueueProfile,
    KubernetesProfile,
    LocalProfile,
    SSHProfile,
    _Managed,
)
from dagflow.errors import ClusterError

log = logging.getLogger(__name__)

DASHBOARD_PRELOAD = "dagflow.dashboard"
WORKER_PRELOAD = "dagflow.workerprocess"


@dataclass(frozen=True, slots=True)
class ClusterHandle:
    """An open cluster: the client dagflow submits through, and what to show the user."""

    name: str
    client: Any  # distributed.Client
    cluster: Any  # distributed.deploy.Cluster | None (None when connected to an address)
    dashboard_host: str | None = None  # the host the dashboard listens on, when known
    adaptive: bool = False  # workers come and go: a resource missing now may appear later

    @property
    def address(self) -> str:
        return str(self.client.scheduler.address)

    @property
    def dashboard_link(self) -> str | None:
        try:
            link = str(self.client.dashboard_link)
        except Exception:
            return None
        if self.dashboard_host:
            # Dask builds the link from the scheduler's host, which for an in-process
            # cluster is the machine's address, not the loopback the dashboard is bound to.
            from distributed.comm.addressing import unparse_host_port

            parts = urlsplit(link)
            if parts.port is not None:
                netloc = unparse_host_port(self.dashboard_host, parts.port)
                link = urlunsplit(parts._replace(netloc=netloc))
        return link


_open: dict[str, ClusterHandle] = {}
_lock = threading.Lock()


def get_cluster(name: str) -> ClusterHandle:
    """The open cluster called `name` (any form `find_profile` accepts), opening it on first use.

    The name is resolved on every call (a profile name depends on the working directory); the
    open cluster is keyed by what it resolved to, so two names for one profile share a cluster.
    """
    profile = find_profile(name)
    ident = _identity(profile)
    handle = _open.get(ident)
    if handle is not None and _alive(handle):
        return handle
    with _lock:
        handle = _open.get(ident)
        if handle is None or not _alive(handle):
            handle = _open[ident] = open_profile(profile, name)
        return handle


def _alive(handle: ClusterHandle) -> bool:
    return handle.client.status in ("running", "connecting")


def _identity(profile: ClusterProfile) -> str:
    if isinstance(profile, AddressProfile):
        return f"address:{profile.address}"
    return f"profile:{profile.source}"


def open_profile(profile: ClusterProfile, name: str | None = None) -> ClusterHandle:
    """Open what `profile` describes: connect to its scheduler, or start its cluster."""
    import dask

    label = name or profile.source
    with dask.config.set(profile.dask_config):
        if isinstance(profile, AddressProfile):
            return ClusterHandle(label, connect(profile), None)
        if isinstance(profile, LocalProfile) and profile.options.processes:
            refuse_unguarded_spawn(label)
        cluster = _start(profile)
        try:
            _scale(cluster, profile)
            from distributed import Client

            client = Client(cluster, set_as_default=False)
        except ClusterError:
            cluster.close()
            raise
        except Exception as exc:
            cluster.close()
            raise ClusterError(
                f"{profile.source}: could not connect to the cluster: {exc}"
            ) from None
        adaptive = isinstance(profile, _Managed) and profile.adapt is not None
        return ClusterHandle(label, client, cluster, _dashboard_host(profile), adaptive)


# ----------------------------------------------------------------------------- starting


def _start(profile: ClusterProfile) -> Any:
    cls, options = _cluster_class(profile)
    _check_options(cls, options, profile)
    try:
        return cls(**options)
    except ClusterError:
        raise
    except Exception as exc:
        raise ClusterError(
            f"{profile.source}: could not start the {cls.__name__}: {_one_line(exc)}"
        ) from None


def _cluster_class(profile: ClusterProfile) -> tuple[type, dict[str, Any]]:
    if isinstance(profile, LocalProfile):
        from distributed import LocalCluster

        return LocalCluster, local_options(profile)
    if isinstance(profile, SSHProfile):
        cls = _import_manager("distributed.deploy.ssh", "SSHCluster", "asyncssh", "ssh", profile)
        return cls, {"hosts": profile.hosts, **profile.options}
    if isinstance(profile, JobqueueProfile):
        name = JOBQUEUE_SYSTEMS[profile.system]
        cls = _import_manager("dask_jobqueue", name, "dask_jobqueue", "jobqueue", profile)
        return cls, dict(profile.options)
    if isinstance(profile, KubernetesProfile):
        cls = _import_manager(
            "dask_kubernetes.operator", "KubeCluster", "dask_kubernetes", "kubernetes", profile
        )
        return cls, dict(profile.options)
    if isinstance(profile, ClassProfile):
        return _import_class(profile), dict(profile.options)
    raise ClusterError(f"{profile.source}: kind {profile.kind!r} does not start a cluster")


def local_options(profile: LocalProfile) -> dict[str, Any]:
    """`LocalCluster` keyword arguments for a local profile (loopback, dagflow's dashboard page)."""
    opts = profile.options
    scheduler_kwargs = dict(opts.scheduler_options)
    if _has_dashboard():
        preload = scheduler_kwargs.get("preload") or []
        preload = [preload] if isinstance(preload, str) else list(preload)
        if DASHBOARD_PRELOAD not in preload:
            preload.append(DASHBOARD_PRELOAD)
        scheduler_kwargs["preload"] = preload
    kwargs: dict[str, Any] = {
        "n_workers": opts.n_workers if opts.n_workers is not None else _local_workers(),
        "threads_per_worker": opts.threads_per_worker,
        "processes": opts.processes,
        "memory_limit": opts.memory_limit,
        "scheduler_port": opts.scheduler_port,
        "dashboard_address": opts.dashboard_address,
        "silence_logs": opts.silence_logs,
        "scheduler_kwargs": scheduler_kwargs,
        **opts.worker_options,
    }
    if opts.processes:
        # in-process workers talk over inproc://; worker processes over TCP on `host`
        kwargs["host"] = opts.host
        preload = kwargs.get("preload") or []
        preload = [preload] if isinstance(preload, str) else list(preload)
        if WORKER_PRELOAD not in preload:
            preload.append(WORKER_PRELOAD)  # Ctrl-C in the terminal is the driver's to handle
        kwargs["preload"] = preload
    else:
        # In-process workers still serve HTTP (/health, /metrics); without an address they
        # would listen on every interface. Bind them where `host` says (loopback by default).
        kwargs.setdefault("worker_dashboard_address", f"{_bracketed(opts.host)}:0")
    if opts.resources:
        kwargs["resources"] = dict(opts.resources)
    return kwargs


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _dashboard_host(profile: ClusterProfile) -> str | None:
    if isinstance(profile, LocalProfile) and profile.options.dashboard_address:
        from distributed.comm.addressing import parse_host_port

        try:
            host, _ = parse_host_port(profile.options.dashboard_address, default_port=0)
        except ValueError:
            return None
        return host or None
    return None


def _local_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _has_dashboard() -> bool:
    import importlib.util

    return importlib.util.find_spec(DASHBOARD_PRELOAD) is not None


def _import_manager(module: str, name: str, needs: str, extra: str, profile: ClusterProfile) -> Any:
    import importlib.util

    if importlib.util.find_spec(needs) is None:
        raise ClusterError(
            f"{profile.source}: kind {profile.kind!r} needs the {needs} package: "
            f"pip install 'dagflow[{extra}]'"
        )
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ClusterError(
            f"{profile.source}: cannot load {module}.{name} ({_one_line(exc)}); "
            f"pip install 'dagflow[{extra}]'"
        ) from None


def _import_class(profile: ClassProfile) -> type:
    from distributed.deploy import Cluster

    module, _, name = profile.cluster_class.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ClusterError(
            f"{profile.source}: class: cannot import {profile.cluster_class!r} ({_one_line(exc)})"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, Cluster)):
        raise ClusterError(
            f"{profile.source}: class: {profile.cluster_class!r} is not a "
            "distributed.deploy.Cluster subclass"
        )
    return cls


def _check_options(cls: type, options: dict[str, Any], profile: ClusterProfile) -> None:
    """Name an option the class cannot take, when its signature says so (no **kwargs)."""
    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    for option in options:
        if option not in params:
            raise ClusterError(
                f"{profile.source}: options.{option}: unknown option for {cls.__name__}"
            )


def _scale(cluster: Any, profile: ClusterProfile) -> None:
    if not isinstance(profile, _Managed):
        return
    try:
        if profile.adapt is not None:
            cluster.adapt(minimum=profile.adapt.minimum, maximum=profile.adapt.maximum)
        elif profile.scale is not None:
            cluster.scale(profile.scale)
    except Exception as exc:
        raise ClusterError(f"{profile.source}: could not scale the cluster: {exc}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def take(name: str) -> ClusterHandle | None:
    """Forget the open cluster `name` resolves to and hand it over (to be closed), if any."""
    try:
        ident = _identity(find_profile(name))
    except ClusterError:
        return None
    with _lock:
        return _open.pop(ident, None)


def take_all() -> list[ClusterHandle]:
    """Forget every open cluster and hand them over (to be closed)."""
    with _lock:
        handles = list(_open.values())
        _open.clear()
    return handles
