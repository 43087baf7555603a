"""The `dagflow runs`, `dagflow logs` and `dagflow db` commands (added by `register(main)`).

A run is named by its id or a unique prefix of it. Errors are one line on stderr, exit code 2.

`--json` output (stable; times are ISO 8601 strings in UTC or null, durations in seconds):

`dagflow runs ls --json` prints a list of run objects, newest first:

    {"id": str, "flow": str, "flow_version": str|null, "state": str, "parameters": {...},
     "attempts": int, "started": time, "ended": time, "duration": float|null,
     "error_type": str|null, "error": str|null, "parent_run_id": str|null,
     "cluster_address": str|null, "dashboard_link": str|null, "entrypoint": str|null,
     "task_counts": {STATE: int, ...}}

`dagflow runs show RUN --json` prints one run object as above, plus

    "tasks": [{"key": str, "name": str, "map_index": int|null, "state": str, "attempts": int,
               "started": time, "ended": time, "duration": float|null, "worker": str|null,
               "error_type": str|null, "error": str|null, "result_location": str|null,
               "result_size": int|null, "result_serializer": str|null,
               "cache_key": str|null}, ...],
    "history": [{"from": str|null, "to": str, "time": time, "attempt": int, "message": str}, ...]

`dagflow db info --json` prints {"url": str, "backend": str, "revision": str|null,
"head": str, "flows": int, "flow_runs": int, "task_runs": int, "logs": int}.

Parameters that JSON cannot hold appear as {"$repr": "<their repr>"}.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from dagflow.core.runs import FlowRun, LogEvent, TaskRun
from dagflow.core.states import StateType
from dagflow.errors import StoreError
from dagflow.store import Store, open_store
from dagflow.store.database import check_schema, make_engine, upgrade
from dagflow.store.schema import flow_runs, flows, logs, task_runs
from dagflow.store.settings import display_url, load_settings

F = TypeVar("F", bound=Callable[..., Any])
STATE_NAMES = [s.value for s in StateType]
STATE_STYLE = {
    "COMPLETED": "green",
    "CACHED": "green",
    "RUNNING": "cyan",
    "PENDING": "dim",
    "RETRYING": "yellow",
    "FAILED": "red",
    "TIMED_OUT": "red",
    "UPSTREAM_FAILED": "magenta",
    "CRASHED": "bold red",
    "CANCELLED": "yellow",
}
FOLLOW_POLL_SECONDS = 0.5


class StoreCommandError(click.ClickException):
    """A store error shown as one line, exit code 2."""

    exit_code = 2


def _one_line(func_: F) -> F:
    @functools.wraps(func_)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func_(*args, **kwargs)
        except StoreError as exc:
            raise StoreCommandError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def run_json(run: FlowRun) -> dict[str, Any]:
    counts = {state.value: n for state, n in sorted(run.counts().items())}
    return {
        "id": run.id,
        "flow": run.flow_name,
        "flow_version": run.flow_version,
        "state": run.state.value,
        "parameters": run.parameters,
        "attempts": run.attempts,
        "started": iso(run.started),
        "ended": iso(run.ended),
        "duration": run.duration,
        "error_type": run.error_type,
        "error": run.error,
        "parent_run_id": run.parent_run_id,
        "cluster_address": run.cluster_address,
        "dashboard_link": run.dashboard_link,
        "entrypoint": run.entrypoint,
        "task_counts": counts,
    }


def task_json(task: TaskRun) -> dict[str, Any]:
    return {
        "key": task.key,
        "name": task.name,
        "map_index": task.map_index,
        "state": task.state.value,
        "attempts": task.attempts,
        "started": iso(task.started),
        "ended": iso(task.ended),
        "duration": task.duration,
        "worker": task.worker,
        "error_type": task.error_type,
        "error": task.error,
        "result_location": task.result_location,
        "result_size": task.result_size,
        "result_serializer": task.result_serializer,
        "cache_key": task.cache_key,
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _state(state: StateType) -> str:
    style = STATE_STYLE.get(state.value, "")
    return f"[{style}]{state.value}[/]" if style else state.value


def _short_error(text: str | None, width: int = 80) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=repr))


def _console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def register(main: click.Group) -> None:
    """Add `runs`, `logs` and `db` to the `dagflow` command group."""
    main.add_command(runs)
    main.add_command(logs_command)
    main.add_command(db)


# ---------------------------------------------------------------------------- runs


@click.group("runs")
def runs() -> None:
    """Recorded flow runs."""


@runs.command("ls")
@click.option("--flow", "flow_name", help="Only runs of this flow.")
@click.option(
    "--state",
    type=click.Choice(STATE_NAMES, case_sensitive=False),
    help="Only runs in this state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
@_one_line
def runs_ls(flow_name: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List recent flow runs, newest first."""
    found = open_store().list_flow_runs(flow_name, state, limit)
    if as_json:
        _echo_json([run_json(r) for r in found])
        return
    if not found:
        click.echo("no flow runs recorded")
        return
    table = Table(box=None, header_style="bold")
    for name in ("ID", "FLOW", "STATE", "STARTED (UTC)", "DURATION", "TASKS"):
        table.add_column(name, no_wrap=True)
    for run in found:
        counts = run.counts()
        done = sum(n for s, n in counts.items() if s.is_final)
        failed = sum(n for s, n in counts.items() if s.is_failure)
        tasks = f"{done}/{len(run.task_runs)}" + (f" ({failed} failed)" if failed else "")
        table.add_row(
            run.id[:12],
            run.flow_name,
            _state(run.state),
            _when(run.started),
            _duration(run.duration),
            tasks,
        )
    _console().print(table)


@runs.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
@_one_line
def runs_show(run: str, as_json: bool) -> None:
    """Show one run (RUN: its id or a unique prefix) and its task runs."""
    fr = open_store().get_flow_run(run)
    tasks = sorted(fr.task_runs.values(), key=lambda t: (t.started or 0.0, t.key))
    if as_json:
        out = run_json(fr)
        out["tasks"] = [task_json(t) for t in tasks]
        out["history"] = [
            {
                "from": step.from_state.value if step.from_state else None,
                "to": step.to_state.value,
                "time": iso(step.time),
                "attempt": step.attempt,
                "message": step.message,
            }
            for step in fr.history
        ]
        _echo_json(out)
        return
    console = _console()
    console.print(f"[bold]{fr.flow_name}[/] run {fr.id}  {_state(fr.state)}")
    console.print(
        f"started {_when(fr.started)} UTC, duration {_duration(fr.duration)},"
        f" attempts {fr.attempts}"
    )
    if fr.parameters:
        console.print(f"parameters {json.dumps(fr.parameters)}", markup=False)
    if fr.error:
        console.print(f"error: {_short_error(fr.error, 200)}", markup=False, style="red")
    if fr.dashboard_link:
        console.print(f"dashboard {fr.dashboard_link}", markup=False)
    if not tasks:
        console.print("no task runs")
        return
    table = Table(box=None, header_style="bold")
    for name in ("TASK", "STATE", "ATTEMPTS", "DURATION", "ERROR"):
        table.add_column(name, no_wrap=name != "ERROR")
    for task in tasks:
        error = f"{task.error_type}: " if task.error_type else ""
        table.add_row(
            task.key,
            _state(task.state),
            str(task.attempts),
            _duration(task.duration),
            _short_error(error + (task.error or "")) if task.state.is_failure else "",
        )
    console.print(table)


# ---------------------------------------------------------------------------- logs


@click.command("logs")
@click.argument("run")
@click.option("--task", "task", help="Only records of this task (name or key).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
@_one_line
def logs_command(run: str, task: str | None, follow: bool) -> None:
    """Print the log records of a run (RUN: its id or a unique prefix)."""
    store = open_store()
    run_id = store.resolve(run)
    last = _print_logs(store, run_id, task, 0)
    while follow:
        done = _run_finished(store, run_id)
        time.sleep(0 if done else FOLLOW_POLL_SECONDS)
        last = _print_logs(store, run_id, task, last)
        if done:
            return


def _print_logs(store: Store, run_id: str, task: str | None, after: int) -> int:
    for row_id, ev in store.reader.logs(run_id, task, after):
        click.echo(format_log(ev))
        after = row_id
    return after


def _run_finished(store: Store, run_id: str) -> bool:
    store.reader.detect_crashes([run_id])
    with store.reader.connect() as conn:
        state = conn.scalar(select(flow_runs.c.state).where(flow_runs.c.id == run_id))
    return state is None or StateType(state).is_final


def format_log(ev: LogEvent) -> str:
    when = datetime.fromtimestamp(ev.time, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    where = f" [{ev.task_key}]" if ev.task_key else ""
    return f"{when} {logging.getLevelName(ev.level):<7}{where} {ev.message}"


# ---------------------------------------------------------------------------- db


@click.group("db")
def db() -> None:
    """The run history database (DAGFLOW_DATABASE_URL, else DAGFLOW_HOME/dagflow.db)."""


@db.command("upgrade")
@_one_line
def db_upgrade() -> None:
    """Create the database or upgrade it to this dagflow's schema."""
    settings = load_settings()
    engine = make_engine(settings.url)
    try:
        before = upgrade(engine)
    finally:
        engine.dispose()
    where = display_url(settings.url)
    if before.up_to_date:
        click.echo(f"{where} is up to date (revision {before.head})")
    else:
        click.echo(f"{where} upgraded from {before.current or '(empty)'} to {before.head}")


@db.command("info")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
@_one_line
def db_info(as_json: bool) -> None:
    """Where the database is, its schema revision, and how much it holds."""
    settings = load_settings()
    engine = make_engine(settings.url)
    try:
        status = check_schema(engine)
        counts = dict.fromkeys(("flows", "flow_runs", "task_runs", "logs"), 0)
        if status.current is not None:
            with engine.connect() as conn:
                for table in (flows, flow_runs, task_runs, logs):
                    counts[table.name] = conn.scalar(select(func.count()).select_from(table)) or 0
    finally:
        engine.dispose()
    info = {
        "url": display_url(settings.url),
        "backend": settings.url.get_backend_name(),
        "revision": status.current,
        "head": status.head,
        **counts,
    }
    if as_json:
        _echo_json(info)
        return
    for key, value in info.items():
        click.echo(
            f"{key + ':':<11}{value if value is not None else '(none: run dagflow db upgrade)'}"
        )
