"""`dagflow cluster start` and `dagflow cluster info`: keep a cluster up, look at one.

`start PROFILE` opens a profile's cluster and keeps it up in the foreground, printing the
scheduler address flows can use (`--cluster ADDRESS`) and the dashboard link, until Ctrl-C (or
SIGTERM); it leaves a note in DAGFLOW_HOME while it runs (`clusters/running.py`). `info NAME`
looks at a cluster without starting one: a scheduler address, an `address` profile, or a
profile whose cluster a `cluster start` keeps up is connected to and its workers listed (threads,
memory, resources, and a warning when package versions differ); any other profile is described
(what it would start). A bad profile or an unreachable scheduler is one line, exit code 2.
"""

from __future__ import annotations

import signal
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import click
from rich.markup import escape

from dagflow.cli.output import console, echo_json, print_table, size, table
from dagflow.clusters import ClusterHandle, find_profile, open_profile
from dagflow.clusters.profiles import ClusterProfile, LocalProfile
from dagflow.errors import ClusterError

# Packages the workers must have for dagflow to run there at all.
WORKER_NEEDS = ("dagflow", "cloudpickle", "dask", "distributed")


def _quiet_port_warning() -> None:
    # distributed warns when the dashboard's default port is taken; the link printed is right.
    warnings.filterwarnings("ignore", message=r"Port \d+ is already in use", category=UserWarning)


@click.group(help="Start a cluster from a profile, or look at one.")
def cluster() -> None:
    pass


@cluster.command(
    help="Start the cluster PROFILE describes and keep it up until Ctrl-C; prints its scheduler "
    "address (for --cluster) and dashboard link."
)
@click.argument("profile")
@click.option("--port", type=click.IntRange(0, 65535), help="Scheduler port (local profiles).")
@click.pass_context
def start(ctx: click.Context, profile: str, port: int | None) -> None:
    from dagflow.clusters import running
    from dagflow.clusters.closing import close_handle

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
    with _stop_signals():
        try:
            handle = open_profile(spec, profile)
        except KeyboardInterrupt:
            click.echo("Cancelled: the cluster did not finish starting", err=True)
            ctx.exit(130)
        note = None
        try:
            note = running.record(spec.source, handle.address, handle.dashboard_link)
            _announce(handle)
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            click.echo("stopping the cluster ...", err=True)
            if note is not None:
                running.forget(note)
            try:
                close_handle(handle)
            except KeyboardInterrupt:
                pass  # a second Ctrl-C: leave; the workers go with this process


@contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM stops `cluster start` as Ctrl-C does."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _announce(handle: ClusterHandle) -> None:
    info = handle.client.scheduler_info(n_workers=-1)
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    click.echo(f"scheduler: {handle.address}")
    click.echo(f"dashboard: {handle.dashboard_link or '(none)'}")
    click.echo(f"workers:   {len(workers)} ({threads} threads)")
    click.echo(f"run flows on it with --cluster {handle.address} (or DAGFLOW_CLUSTER)")
    click.echo("press Ctrl-C to stop it", err=True)


@cluster.command(
    help="Look at cluster NAME (a profile name or file, or a scheduler address) without starting "
    "one: a running scheduler's workers (threads, memory, resources; a warning when package "
    "versions differ), or what a profile would start."
)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def info(name: str, as_json: bool) -> None:
    from dagflow.clusters import running
    from dagflow.clusters.profiles import AddressProfile, address_profile

    _quiet_port_warning()
    spec = find_profile(name)
    note = None if isinstance(spec, AddressProfile) else running.find(spec.source)
    if not isinstance(spec, AddressProfile) and note is None:
        _describe(name, spec, as_json)
        return
    target = spec if note is None else address_profile(note.address)
    handle = open_profile(target, name)
    try:
        _show(handle, spec, note is not None, as_json)
    finally:
        handle.client.close()


def _describe(name: str, spec: ClusterProfile, as_json: bool) -> None:
    """What a profile would start, without starting it."""
    settings = spec.model_dump(exclude={"kind", "description"}, by_alias=True)
    if as_json:
        echo_json(
            {"name": name, "source": spec.source, "kind": spec.kind, "running": False,
             "scheduler": None, "dashboard": None, "workers": [], "profile": settings}
        )  # fmt: skip
        return
    click.echo(f"profile:   {spec.source}")
    click.echo(f"kind:      {spec.kind} (not running: nothing was started to show this)")
    if spec.description:
        click.echo(f"about:     {spec.description}")
    if isinstance(spec, LocalProfile):
        from dagflow.clusters.opening import local_options

        kwargs = local_options(spec)
        opts = spec.options
        where = "worker processes" if opts.processes else "worker threads of the driver"
        click.echo(
            f"starts:    {kwargs['n_workers']} {where}, {opts.threads_per_worker} thread(s) "
            f"each, memory limit {opts.memory_limit} per worker"
        )
        click.echo(f"dashboard: {opts.dashboard_address or '(none)'} while it runs")
    else:
        for key, value in settings.items():
            if value not in (None, {}, []):
                click.echo(f"{key + ':':<10} {value}")
    click.echo(f"keep one up with: dagflow cluster start {name}  (then info shows its workers)")


def _show(handle: ClusterHandle, spec: ClusterProfile, started: bool, as_json: bool) -> None:
    client = handle.client
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    memory = sum(w.get("memory_limit") or 0 for w in workers.values())
    versions = client.get_versions(check=False, packages=["dagflow"])
    problems = version_mismatches(versions)
    ordered = sorted(workers.items(), key=lambda item: str(item[1].get("name")))
    if as_json:
        echo_json(
            {
                "name": handle.name,
                "source": spec.source,
                "kind": spec.kind,
                "running": True,
                "scheduler": handle.address,
                "dashboard": handle.dashboard_link,
                "workers": [
                    {"name": str(w.get("name", "")), "address": address,
                     "threads": w.get("nthreads"), "memory_limit": w.get("memory_limit"),
                     "resources": w.get("resources") or {}}
                    for address, w in ordered
                ],
                "version_mismatches": problems,
            }
        )  # fmt: skip
        return
    click.echo(f"scheduler: {handle.address}")
    if started:
        click.echo(f"profile:   {spec.source} (kept up by dagflow cluster start)")
    click.echo(f"dashboard: {handle.dashboard_link or '(none)'}")
    click.echo(f"workers:   {len(workers)}, threads: {threads}, memory: {size(memory)}")
    rows = table("NAME", "ADDRESS", "THREADS", "MEMORY", "RESOURCES")
    for address, w in ordered:
        resources = ", ".join(f"{k}={v:g}" for k, v in sorted((w.get("resources") or {}).items()))
        rows.add_row(
            escape(str(w.get("name", ""))),
            address,
            str(w.get("nthreads", "")),
            size(w.get("memory_limit") or 0),
            escape(resources) or "-",
        )
    print_table(console(), rows)
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
