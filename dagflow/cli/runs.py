"""`dagflow runs ls|show|cancel` and `dagflow logs`: read the run history, cancel a run.

A run is named by its id or a unique prefix of it. These commands only read the database (they
never start a cluster), through the store's methods; `--json` prints the documented documents
of `docs/store.md`. `runs cancel` writes a request that the run's driver, in whatever process,
sees within about a second (a SCHEDULED run is cancelled at once).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

import click
from rich.table import Table

from dagflow import runtime
from dagflow.cli.output import (
    console,
    duration,
    echo_json,
    iso,
    run_json,
    short_error,
    state_markup,
    task_json,
    when,
)
from dagflow.core.runs import FlowRun, LogEvent
from dagflow.core.states import StateType
from dagflow.store import Store

STATE_NAMES = [s.value for s in StateType]
FOLLOW_POLL_SECONDS = 0.5


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
def runs_ls(flow_name: str | None, state: str | None, limit: int, as_json: bool) -> None:
    """List recent flow runs, newest first."""
    found = runtime.default_store().list_flow_runs(flow_name, state, limit)
    if as_json:
        echo_json([run_json(r) for r in found])
        return
    if not found:
        click.echo("no flow runs recorded")
        return
    table = Table(box=None, header_style="bold")
    deployed = any(run.deployment for run in found)  # a column only when it says something
    columns = ("ID", "FLOW", "STATE", "STARTED (UTC)", "DURATION", "TASKS")
    for name in (*columns, "DEPLOYMENT") if deployed else columns:
        table.add_column(name, no_wrap=True)
    for run in found:
        counts = run.counts()
        done = sum(n for s, n in counts.items() if s.is_final)
        failed = sum(n for s, n in counts.items() if s.is_failure)
        tasks = f"{done}/{len(run.task_runs)}" + (f" ({failed} failed)" if failed else "")
        row = [
            run.id[:12],
            run.flow_name,
            state_markup(run.state) + (" [yellow](late)[/]" if run.late else ""),
            _started(run),
            duration(run.duration),
            tasks,
        ]
        table.add_row(*row, *([run.deployment or "-"] if deployed else []))
    console().print(table)


def _started(run: FlowRun) -> str:
    if run.started is None and run.state is StateType.SCHEDULED and run.scheduled_time:
        return f"due {when(run.scheduled_time)}"
    return when(run.started)


@runs.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def runs_show(run: str, as_json: bool) -> None:
    """Show one run (RUN: its id or a unique prefix) and its task runs."""
    fr = runtime.default_store().get_flow_run(run)
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
        echo_json(out)
        return
    out_console = console()
    out_console.print(f"[bold]{fr.flow_name}[/] run {fr.id}  {state_markup(fr.state)}")
    out_console.print(
        f"started {when(fr.started)} UTC, duration {duration(fr.duration)}, attempts {fr.attempts}"
    )
    if fr.parameters:
        out_console.print(f"parameters {json.dumps(fr.parameters)}", markup=False)
    if fr.error:
        out_console.print(f"error: {short_error(fr.error, 200)}", markup=False, style="red")
    if fr.dashboard_link:
        out_console.print(f"dashboard {fr.dashboard_link}", markup=False)
    if not tasks:
        out_console.print("no task runs")
        return
    table = Table(box=None, header_style="bold")
    for name in ("TASK", "STATE", "ATTEMPTS", "DURATION", "ERROR"):
        table.add_column(name, no_wrap=name != "ERROR")
    for task in tasks:
        error = f"{task.error_type}: " if task.error_type else ""
        table.add_row(
            task.key,
            state_markup(task.state),
            str(task.attempts),
            duration(task.duration),
            short_error(error + (task.error or "")) if task.state.is_failure else "",
        )
    out_console.print(table)


@runs.command("cancel")
@click.argument("run")
def runs_cancel(run: str) -> None:
    """Cancel a run (RUN: its id or a unique prefix), from any process: a SCHEDULED run is
    cancelled at once; a running one's driver cancels its work within about a second."""
    run_id, state = runtime.default_store().request_cancel(run)
    if state is StateType.CANCELLED:
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(f"run {run_id} ({state}): cancel requested; its driver stops it shortly")


@click.command("logs")
@click.argument("run")
@click.option("--task", "task", help="Only records of this task (name or key).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
def logs_command(run: str, task: str | None, follow: bool) -> None:
    """Print the log records of a run (RUN: its id or a unique prefix)."""
    store = runtime.default_store()
    run_id = store.resolve(run)
    last = print_logs(store, run_id, task, 0)
    while follow:
        state = store.run_state(run_id)
        done = state is None or state.is_final
        time.sleep(0 if done else FOLLOW_POLL_SECONDS)
        last = print_logs(store, run_id, task, last)
        if done:
            return


def print_logs(store: Store, run_id: str, task: str | None, after: int) -> int:
    for row_id, ev in store.logs_after(run_id, task, after):
        click.echo(format_log(ev))
        after = row_id
    return after


def format_log(ev: LogEvent) -> str:
    stamp = datetime.fromtimestamp(ev.time, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    where = f" [{ev.task_key}]" if ev.task_key else ""
    return f"{stamp} {logging.getLevelName(ev.level):<7}{where} {ev.message}"
