"""`dagflow cluster start` and `dagflow cluster info`: keep a cluster up, look at one.

`start PROFILE` opens a profile's cluster and keeps it up in the foreground, printing the
scheduler address flows can use (`--cluster ADDRESS`) and the dashboard link, until Ctrl-C.
`info NAME` connects to a cluster (any name `--cluster` accepts), lists its workers with their
threads, memory and resources, and warns when package versions differ between this client, the
scheduler and the workers. A bad profile or an unreachable scheduler is one line, exit code 2.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Mapping
from typing import Any

import click

from dagflow.clusters import ClusterHandle, find_profile, open_profile
from dagflow.clusters.profiles import LocalProfile
from dagflow.errors import ClusterError

# Packages the workers must have for dagflow to run there at all.
WORKER_NEEDS = ("dagflow", "cloudpickle", "dask", "distributed")


def _quiet_port_warning() -> None:
    # distributed warns when the dashboard's default port is taken; the link printed is right.
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)


@click.group(help="Start a cluster from a profile, or look at a running one.")
def cluster() -> None:
    pass


@cluster.command(
    help="Start the cluster PROFILE describes and keep it up until Ctrl-C; prints its scheduler "
    "address (for --cluster) and dashboard link."
)
@click.argument("profile")
@click.option("--port", type=click.IntRange(0, 65535), help="Scheduler port (local profiles).")
def start(profile: str, port: int | None) -> None:
    _quiet_port_warning()
    spec = find_profile(profile)
    if not spec.creates_cluster:
        raise ClusterError(
            f"{spec.source}: connects to an existing scheduler; nothing to start "
            f"(see it with: dagflow cluster info {profile})"
        )
    if port is not None:
        if not isinstance(spec, LocalProfile):
            raise ClusterError(f"--port applies to local profiles, not kind {spec.kind!r}")
        options = spec.options.model_copy(update={"scheduler_port": port})
        source = spec.source
        spec = spec.model_copy(update={"options": options})
        spec._source = source
    handle = open_profile(spec, profile)
    try:
        _announce(handle)
        _wait_for_stop()
    finally:
        click.echo("stopping the cluster ...", err=True)
        handle.client.close()
        if handle.cluster is not None:
            handle.cluster.close()


def _announce(handle: ClusterHandle) -> None:
    info = handle.client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    click.echo(f"scheduler: {handle.address}")
    click.echo(f"dashboard: {handle.dashboard_link or '(none)'}")
    click.echo(f"workers:   {len(workers)} ({threads} threads)")
    click.echo(f"run flows on it with --cluster {handle.address} (or DAGFLOW_CLUSTER)")
    click.echo("press Ctrl-C to stop it", err=True)


def _wait_for_stop() -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


@cluster.command(
    help="Show the workers of cluster NAME (a profile name or file, or a scheduler address): "
    "threads, memory, resources; warn when package versions differ."
)
@click.argument("name")
def info(name: str) -> None:
    _quiet_port_warning()
    handle = open_profile(find_profile(name), name)
    try:
        _show(handle)
    finally:
        handle.client.close()
        if handle.cluster is not None:
            handle.cluster.close()


def _show(handle: ClusterHandle) -> None:
    client = handle.client
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    memory = sum(w.get("memory_limit") or 0 for w in workers.values())
    click.echo(f"scheduler: {handle.address}")
    click.echo(f"dashboard: {handle.dashboard_link or '(none)'}")
    click.echo(f"workers:   {len(workers)}, threads: {threads}, memory: {_bytes(memory)}")
    rows = [("NAME", "ADDRESS", "THREADS", "MEMORY", "RESOURCES")]
    for address, w in sorted(workers.items(), key=lambda item: str(item[1].get("name"))):
        resources = ", ".join(f"{k}={v:g}" for k, v in sorted((w.get("resources") or {}).items()))
        rows.append(
            (
                str(w.get("name", "")),
                address,
                str(w.get("nthreads", "")),
                _bytes(w.get("memory_limit") or 0),
                resources or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  " + "  ".join(cells).rstrip())
    versions = client.get_versions(check=False, packages=["dagflow"])
    problems = version_mismatches(versions)
    if problems:
        click.echo("warning: package versions differ between client, scheduler and workers:")
        for line in problems:
            click.echo(f"  {line}")


def version_mismatches(versions: Mapping[str, Any]) -> list[str]:
    """One line per package whose versions differ, from `client.get_versions(check=False)`."""
    places: dict[str, Mapping[str, Any]] = {
        "client": _packages(versions.get("client")),
        "scheduler": _packages(versions.get("scheduler")),
    }
    for address, worker in sorted((versions.get("workers") or {}).items()):
        places[f"worker {address}"] = _packages(worker)
    names = sorted({pkg for packages in places.values() for pkg in packages})
    lines = []
    for pkg in names:
        seen = {where: packages.get(pkg) for where, packages in places.items()}
        present = {v for v in seen.values() if v is not None}
        missing_on_workers = pkg in WORKER_NEEDS and any(
            where.startswith("worker") and v is None for where, v in seen.items()
        )
        if len(present) > 1 or missing_on_workers:
            detail = ", ".join(f"{where} {v or 'not installed'}" for where, v in seen.items())
            lines.append(f"{pkg}: {detail}")
    return lines


def _packages(entry: Any) -> Mapping[str, Any]:
    if isinstance(entry, Mapping):
        packages = entry.get("packages")
        if isinstance(packages, Mapping):
            return packages
    return {}


def _bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
