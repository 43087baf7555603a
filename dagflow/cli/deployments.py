"""`dagflow deployments ls|show|run|pause|resume|rm|backfill`: the registered deployments.

A deployment is named `FLOW/NAME` (or just NAME when no other flow has one so named). These
commands work on the run history database: `run` and `backfill` create SCHEDULED runs that a
`dagflow serve` process serving the deployment picks up; `run --wait` then follows the run as
`dagflow run` does and exits with its code (0 completed, 1 failed, 130 cancelled).

With `DAGFLOW_API_URL` set, `ls`, `show`, `run`, `pause` and `resume` go through that dagflow
server instead (`dagflow.client.Client`, with `DAGFLOW_API_TOKEN`): the same output, the same
one-line errors, and no database credentials on this machine.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from dagflow import runtime
from dagflow.cli.logs import print_new
from dagflow.cli.output import console, echo_json, iso, one_line, state_markup, when
from dagflow.core.schedules import CronSchedule, Schedule, parse_instant
from dagflow.core.states import StateType
from dagflow.entrypoints import load_flow
from dagflow.errors import DeploymentError, UsageError
from dagflow.store import DeploymentInfo, NewRun

if TYPE_CHECKING:
    from dagflow.client import Client
    from dagflow.store import Store

WAIT_POLL_SECONDS = 0.5
NO_SERVER_HINT_AFTER = 10.0
MAX_BACKFILL = 10_000


@click.group("deployments")
def deployments() -> None:
    """Deployments: flows served on schedules by `dagflow serve`."""


def info_json(
    info: DeploymentInfo, places: dict[tuple[str, str], Any] | None = None
) -> dict[str, Any]:
    dep = info.deployment
    places = places or {}
    last = (
        {"id": info.last_run_id, "state": info.last_run_state.value}
        if info.last_run_id and info.last_run_state
        else None
    )
    return {
        "name": dep.full_name,
        "flow": dep.flow_name,
        "deployment": dep.name,
        "entrypoint": dep.entrypoint,
        "parameters": dict(dep.parameters),
        "schedules": dep.schedule_specs(),
        "cluster": dep.cluster,
        "tags": list(dep.tags),
        "description": dep.description,
        "paused": dep.paused,
        "max_active_runs": dep.max_active_runs,
        "catchup": dep.catchup,
        "created": iso(info.created),
        "updated": iso(info.updated),
        "next_run": iso(info.next_run),
        "last_run": last,
        "triggers": [_trigger_json(dep.full_name, t, places) for t in dep.triggers],
    }


def source() -> Store | Client:
    """The dagflow server named by `DAGFLOW_API_URL`, else the run history database."""
    from dagflow import settings

    current = settings.load()
    if current.api_url is not None:
        from dagflow.client import Client

        return Client(current.api_url, current.api_token)
    return runtime.default_store(current)


@deployments.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def ls(as_json: bool) -> None:
    """List registered deployments."""
    from dagflow.client import Client

    where = source()
    found = where.deployments()
    if as_json:
        names = [i.deployment.full_name for i in found]
        places = {} if isinstance(where, Client) else where.trigger_positions(names)
        echo_json([info_json(i, places) for i in found])
        return
    if not found:
        click.echo("no deployments registered (start one with: dagflow serve FILE.py:FLOW ...)")
        return
    table = Table(box=None, header_style="bold")
    for name in ("DEPLOYMENT", "SCHEDULES", "PAUSED", "NEXT (UTC)", "LAST RUN"):
        table.add_column(
            name, no_wrap=name != "SCHEDULES", min_width=12 if name == "SCHEDULES" else None
        )
    for info in found:
        dep = info.deployment
        last = (
            f"{info.last_run_id[:8]} {state_markup(info.last_run_state)}"
            if info.last_run_id and info.last_run_state
            else "-"
        )
        table.add_row(
            dep.full_name,
            "; ".join([*(_short(s) for s in dep.schedules), *(t.name for t in dep.triggers)])
            or "-",
            "yes" if dep.paused else "no",
            when(info.next_run)[:16],
            last,
        )
    console().print(table)


def _short(schedule: Schedule) -> str:
    if isinstance(schedule, CronSchedule):
        return f"{schedule.cron} {schedule.timezone}"
    return f"every {schedule.every:g}s"


@deployments.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def show(name: str, as_json: bool) -> None:
    """Show one deployment (FLOW/NAME)."""
    from dagflow.client import Client

    where = source()
    info = where.deployments([name])[0]
    dep = info.deployment
    # the server's API does not carry trigger positions yet: through it, they read as none
    positions = {} if isinstance(where, Client) else where.trigger_positions([dep.full_name])
    data = info_json(info, positions)
    if as_json:
        echo_json(data)
        return
    for key, value in data.items():
        if key != "triggers":
            click.echo(f"{key}: {value}")
    click.echo(f"triggers: {'none' if not dep.triggers else ''}".rstrip())
    for trigger, item in zip(dep.triggers, data["triggers"], strict=True):
        last = f"last event {item['last_event_time']}" if item["last_event_id"] else "no event yet"
        at = f", position {item['position']}" if item["position"] is not None else ""
        click.echo(f"  {trigger.name}: {trigger.describe()}: {item['events']} event(s), {last}{at}")


def _trigger_json(
    full_name: str, trigger: Any, places: dict[tuple[str, str], Any]
) -> dict[str, Any]:
    place = places.get((full_name, trigger.name))
    return {
        "name": trigger.name,
        "kind": trigger.kind,
        "spec": trigger.spec(),
        "events": place.events if place else 0,
        "last_event_id": place.last_event_id if place else None,
        "last_event_time": iso(place.last_event_time) if place else None,
        "position": place.position if place else None,
    }


@deployments.command("pause")
@click.argument("name")
def pause(name: str) -> None:
    """Stop creating runs of NAME; its upcoming scheduled runs are dropped."""
    click.echo(f"deployment {source().set_paused(name, True)} paused")


@deployments.command("resume")
@click.argument("name")
def resume(name: str) -> None:
    """Create runs of NAME on its schedules again (from now on)."""
    click.echo(f"deployment {source().set_paused(name, False)} resumed")


@deployments.command("rm")
@click.argument("name")
def rm(name: str) -> None:
    """Forget NAME; its runs not started yet are dropped, its past runs stay."""
    click.echo(f"deployment {runtime.default_store().remove_deployment(name)} removed")


@deployments.command("run")
@click.argument("name")
@click.option("--param", "-p", "pairs", multiple=True, metavar="NAME=VALUE", help="A parameter.")
@click.option("--params-json", metavar="JSON", help="Parameters as a JSON object.")
@click.option("--wait", is_flag=True, help="Follow the run to its end; exit with its code.")
@click.pass_context
def run(
    ctx: click.Context, name: str, pairs: tuple[str, ...], params_json: str | None, wait: bool
) -> None:
    """Trigger a run of NAME now: a serving `dagflow serve` process starts it."""
    from dagflow.client import Client
    from dagflow.scheduler.manual import create_run, local_user

    where = source()
    if isinstance(where, Client):  # the server validates them, with the same code
        full_name = where.deployments([name])[0].deployment.full_name
        run_id = where.run_deployment(name, pairs, _json_object(params_json))
    else:
        dep = where.deployment(name)
        full_name = dep.full_name
        run_id = create_run(
            where, dep, load_flow(dep.entrypoint), pairs, params_json, requested_by=local_user()
        )
    click.echo(f"run {run_id} of {full_name} created")
    if wait:
        ctx.exit(_follow(run_id))


def _json_object(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--params-json is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"--params-json must be a JSON object, got {type(value).__name__}")
    return value


def _follow(run_id: str) -> int:
    """Print the run's logs until it ends; its exit code (as `dagflow run`'s)."""
    store = runtime.run_history()
    start = time.monotonic()
    hinted = False
    marks = (0, 0)
    while True:
        state = store.run_state(run_id)
        marks = print_new(store, run_id, None, marks, False)
        if state is not None and state.is_final:
            break
        waited = time.monotonic() - start
        if state is StateType.SCHEDULED and not hinted and waited > NO_SERVER_HINT_AFTER:
            click.echo("still SCHEDULED: is a `dagflow serve` process serving it?", err=True)
            hinted = True
        time.sleep(WAIT_POLL_SECONDS)
    fr = store.get_flow_run(run_id, task_history=False)
    took = f" in {fr.duration:.2f}s" if fr.duration is not None else ""
    click.echo(f"run {fr.id} {fr.state}{took}")
    if fr.state.is_success:
        return 0
    message = one_line(fr.error or "no error recorded")
    if fr.state is StateType.CANCELLED:
        click.echo(f"Cancelled: {message}", err=True)
        return 130
    click.echo(f"Error: flow run {fr.id} ended {fr.state}: {message}", err=True)
    return 1


@deployments.command("backfill")
@click.argument("name")
@click.option("--start", "start", required=True, metavar="TIME", help="ISO time (inclusive).")
@click.option("--end", "end", required=True, metavar="TIME", help="ISO time (inclusive).")
def backfill(name: str, start: str, end: str) -> None:
    """Create the runs of NAME's ticks between --start and --end (ISO times; without an offset
    they are UTC), skipping ticks already recorded; serving processes run them oldest first."""
    store = runtime.default_store()
    dep = store.deployment(name)
    lo, hi = parse_instant(start, "--start"), parse_instant(end, "--end")
    if hi < lo:
        raise DeploymentError(f"--end {end!r} is before --start {start!r}")
    if not dep.schedules:
        raise DeploymentError(f"deployment {dep.full_name!r} has no schedule to backfill")
    found = dep.ticks(lo - 1e-6, hi, MAX_BACKFILL + 1)
    if len(found) > MAX_BACKFILL:
        raise DeploymentError(
            f"--start/--end: more than {MAX_BACKFILL} ticks; backfill a shorter window"
        )
    runs = [NewRun(dep, t, "backfill", dep.idempotency_key(t), dict(dep.parameters)) for t in found]
    created = store.create_runs(runs)
    click.echo(
        f"{dep.full_name}: {len(found)} tick(s) from {iso(lo)} to {iso(hi)}: "
        f"{len(created)} run(s) created, {len(found) - len(created)} already recorded"
    )
