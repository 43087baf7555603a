"""`dagflow runs ls|show` and `dagflow logs`: read the run history.

A run is named by its id or a unique prefix of it. These commands only read the history (they
never start a cluster) through `runtime.run_history()`: the database, or a dagflow server when
`DAGFLOW_API_URL` is set (both implement `RunHistory`); `--json` prints the documented documents
of `docs/store.md`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
from dagflow.core.history import RunHistory
from dagflow.core.keys import logical
from dagflow.core.runs import LogEvent
from dagflow.core.states import StateType
from dagflow.core.text import inert

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
    found = runtime.run_history().list_runs(flow_name, state, limit)
    if as_json:
        echo_json([run_json(s.run, s.task_counts) for s in found])
        return
    if not found:
        click.echo("no flow runs recorded")
        return
    table = Table(box=None, header_style="bold")
    for name in ("ID", "FLOW", "STATE", "STARTED (UTC)", "DURATION", "TASKS"):
        table.add_column(name, no_wrap=True)
    for summary in found:
        run = summary.run
        failed = summary.failed_tasks
        tasks = f"{summary.finished_tasks}/{summary.tasks}" + (
            f" ({failed} failed)" if failed else ""
        )
        table.add_row(
            run.id[:12],
            Text(inert(run.flow_name)),
            state_markup(run.state),
            when(run.started),
            duration(run.duration),
            tasks,
        )
    console().print(table)


@runs.command("show")
@click.argument("run")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def runs_show(run: str, as_json: bool) -> None:
    """Show one run (RUN: its id or a unique prefix) and its task runs."""
    fr = runtime.run_history().get_flow_run(run)
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
    out_console.print(
        f"[bold]{escape(inert(fr.flow_name))}[/] run {fr.id}  {state_markup(fr.state)}"
    )
    out_console.print(
        f"started {when(fr.started)} UTC, duration {duration(fr.duration)}, attempts {fr.attempts}"
    )
    if fr.parameters:
        out_console.print(f"parameters {json.dumps(fr.parameters)}", markup=False)
    if fr.error:
        out_console.print(f"error: {inert(short_error(fr.error, 200))}", markup=False, style="red")
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
            Text(task.key),
            state_markup(task.state),
            str(task.attempts),
            duration(task.duration),
            Text(inert(short_error(error + (task.error or "")))) if task.state.is_failure else "",
        )
    out_console.print(table)


@click.command("logs")
@click.argument("run")
@click.option("--task", "task", help="Only records of this task (name or key).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
def logs_command(run: str, task: str | None, follow: bool) -> None:
    """Print the log records of a run (RUN: its id or a unique prefix)."""
    history = runtime.run_history()
    run_id = history.resolve(run)
    last = _print_logs(history, run_id, task, 0)
    while follow:
        state = history.run_state(run_id)
        done = state is None or state.is_final
        time.sleep(0 if done else FOLLOW_POLL_SECONDS)
        last = _print_logs(history, run_id, task, last)
        if done:
            return


def _print_logs(history: RunHistory, run_id: str, task: str | None, after: int) -> int:
    for row_id, ev in history.logs_after(run_id, task, after):
        click.echo(format_log(ev))
        after = row_id
    return after


def format_log(ev: LogEvent) -> str:
    stamp = datetime.fromtimestamp(ev.time, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    where = f" [{logical(ev.task_key)}]" if ev.task_key else ""
    return f"{stamp} {logging.getLevelName(ev.level):<7}{where} {inert(ev.message)}"
