"""`dagflow runs ls|show|cancel|approve|reject`: read the run history, cancel a run, answer a
pause for approval (`approvals.py`).

A run is named by its id or a unique prefix of it. These commands only read the database (they
never start a cluster), through the store's methods; `--json` prints the documented documents
of `docs/store.md`. `runs show` puts what went wrong first: the run's error, its failed tasks,
then its tasks with each mapped task as one group (`tasks.py`); `--task KEY` shows one task's
attempts and traceback. A run's duration is its running time (`FlowRun.running_time`), not the
wall time across a crash and a resume. `runs cancel` writes a request that the run's driver, in
whatever process, sees within about a second (a SCHEDULED run is cancelled at once).
"""

from __future__ import annotations

import json
import socket
import time
from urllib.parse import urlsplit

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dagflow import runtime
from dagflow.cli import tasks as task_table
from dagflow.cli.output import (
    clock,
    console,
    duration,
    echo_json,
    error_text,
    first_line,
    history_json,
    print_table,
    run_json,
    size,
    state_markup,
    table,
    task_json,
    when,
)
from dagflow.core.runs import FlowRun, TaskRun
from dagflow.core.states import StateType
from dagflow.core.text import inert

STATE_NAMES = [s.value for s in StateType]
PROBE_SECONDS = 0.5


@click.group("runs")
def runs() -> None:
    """Recorded flow runs: ls, show, cancel, approve, reject."""


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
    out = console()
    deployed = any(s.run.deployment for s in found)  # a column only when it says something
    columns = ("ID", "FLOW", "STATE", "STARTED (UTC)", "DURATION", "TASKS")
    rows = table(*columns, *(("DEPLOYMENT",) if deployed else ()))
    for summary in found:
        run = summary.run
        deployment = (escape(inert(run.deployment or "-")),) if deployed else ()
        rows.add_row(
            run.id[:12],
            escape(inert(run.flow_name)),
            state_markup(run.state) + (" [yellow](late)[/]" if run.late else ""),
            _started(run),
            duration(run.running_time(now=time.time())),  # an active run: so far
            task_counts(summary.task_counts),
            *deployment,
        )
    print_table(out, rows)


def _started(run: FlowRun) -> str:
    if run.started is None and run.state is StateType.SCHEDULED and run.scheduled_time:
        return f"due {when(run.scheduled_time)}"
    return when(run.started)


def task_counts(counts: dict[StateType, int]) -> str:
    """`3/4 done (1 failed)`: tasks completed (or cached) of all, then what ended otherwise."""
    done = sum(n for s, n in counts.items() if s.is_success)
    failed = sum(n for s, n in counts.items() if s.is_failure)
    cancelled = counts.get(StateType.CANCELLED, 0)
    unfinished = sum(n for s, n in counts.items() if not s.is_final)
    notes = [
        f"{n} {what}"
        for n, what in ((failed, "failed"), (cancelled, "cancelled"), (unfinished, "unfinished"))
        if n
    ]
    return f"{done}/{sum(counts.values())}" + (f" ({', '.join(notes)})" if notes else "")


@runs.command("show")
@click.argument("run")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(STATE_NAMES, case_sensitive=False),
    help="Only tasks in this state (repeatable).",
)
@click.option("--all", "show_all", is_flag=True, help="Every task run on its own row.")
@click.option("--task", "task_ref", metavar="KEY", help="One task: its attempts and traceback.")
@click.option(
    "--all-attempts", is_flag=True, help="Under each task, every attempt from its history."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (documented).")
def runs_show(
    run: str,
    states: tuple[str, ...],
    show_all: bool,
    task_ref: str | None,
    all_attempts: bool,
    as_json: bool,
) -> None:
    """Show one run (RUN: its id or a unique prefix): its error, failed tasks first, then its
    tasks, mapped ones grouped."""
    # the table needs no task's steps; --task, --all-attempts and --json show them
    steps = task_ref is not None or all_attempts or as_json
    fr = runtime.run_history().get_flow_run(run, task_history=steps)
    tasks = list(fr.task_runs.values())
    if task_ref is not None:
        earlier = fr.all_task_runs.get(task_ref.strip())  # a Dask key, of any flow attempt
        _show_task(fr, earlier or task_table.find(tasks, task_ref, fr.id), as_json)
        return
    chosen = frozenset(StateType(s.upper()) for s in states) or None
    if as_json:
        out = run_json(fr)
        shown = [t for t in tasks if chosen is None or t.state in chosen]
        shown.sort(key=lambda t: (t.started or 0.0, t.key))
        out["tasks"] = [task_json(t) for t in shown]
        out["history"] = history_json(fr)
        echo_json(out)
        return
    out_console = console()
    _header(out_console, fr)
    if not tasks:
        out_console.print("no task runs")
        return
    rows, left_out = task_table.rows(tasks, chosen, grouped=not show_all)
    if not rows:
        out_console.print(f"no task runs in state {', '.join(sorted(states)).upper()}")
        return
    print_table(out_console, _task_table(rows, all_attempts))
    if left_out:
        out_console.print(
            f"{left_out} more failed tasks: dagflow runs show {fr.id[:12]} --state FAILED --all",
            markup=False,
        )


def _header(out: Console, fr: FlowRun) -> None:
    out.print(f"[bold]{escape(inert(fr.flow_name))}[/] run {fr.id}  {state_markup(fr.state)}")
    ran, wall = fr.running_time(now=time.time()), fr.duration
    took = f"ran {duration(ran)}" if fr.state.is_final else f"running for {duration(ran)}"
    if ran is not None and wall is not None and wall - ran > 1.0:
        took += f" (wall time {duration(wall)}, across its stops and resumes)"
    out.print(f"started {when(fr.started)} UTC, {took}, attempts {fr.attempts}", markup=False)
    if fr.deployment:
        due = f", scheduled for {when(fr.scheduled_time)} UTC" if fr.scheduled_time else ""
        late = " (late)" if fr.late else ""
        out.print(
            f"deployment {inert(fr.deployment)} ({fr.origin or 'manual'}){due}{late}",
            markup=False,
        )
    if fr.event_id:
        out.print(f"started by {inert(_why(fr.event_id))}", markup=False)
    if fr.parameters:
        out.print(f"parameters {json.dumps(fr.parameters, default=repr)}", markup=False)
    if fr.error:
        out.print(f"error: {inert(first_line(error_text(fr.error_type, fr.error)))}",
                  style="red", markup=False)  # fmt: skip
    if fr.dashboard_link:
        gone = "" if cluster_alive(fr) else "  (gone: that cluster no longer answers)"
        out.print(f"dashboard {fr.dashboard_link}{gone}", markup=False)


def _why(event_id: str) -> str:
    """The event that started a run, in a few words (its id when the history cannot tell)."""
    from dagflow.cli.events import summary

    finder = getattr(runtime.run_history(), "event", None)
    record = finder(event_id) if callable(finder) else None
    if record is None:
        return f"event {event_id[:12]}"
    more = ""
    counter = getattr(runtime.run_history(), "events", None)
    if record.run_id and callable(counter):
        n = len(counter(run_id=record.run_id, limit=1000))
        more = f" and {n - 1} more (dagflow events ls --run {record.run_id[:12]})" if n > 1 else ""
    return f"{record.event.kind} event {event_id[:12]} ({summary(record)}){more}"


def _task_table(rows: list[task_table.Row], all_attempts: bool) -> Table:
    out = table("TASK", "STATE", "ATTEMPTS", "DURATION", "ERROR", wrap=("ERROR",))
    for row in rows:
        states = ", ".join(
            state_markup(state) if count == 1 and len(row.states) == 1 else
            f"{count} {state_markup(state)}"
            for state, count in row.states
        )  # fmt: skip
        error = first_line(error_text(row.error_type, row.error))
        if row.more_errors:
            error += f" (and {row.more_errors} more)"
        out.add_row(
            escape(row.label), states, row.attempts, duration(row.duration), escape(inert(error))
        )
        if all_attempts and row.task is not None:
            for attempt in task_table.attempts(row.task):
                took = None if attempt.ended is None else attempt.ended - attempt.started
                out.add_row(
                    f"  attempt {attempt.number}" if attempt.number else "  -",
                    state_markup(attempt.state),
                    "",
                    duration(took),
                    escape(inert(first_line(attempt.message))),
                )
    return out


@runs.command("cancel")
@click.argument("run")
def runs_cancel(run: str) -> None:
    """Cancel a run (RUN: its id or a unique prefix), from any process: a SCHEDULED run is
    cancelled at once; a running one's driver cancels its work within about a second."""
    run_id, state = runtime.run_history().request_cancel(run)
    if state is StateType.CANCELLED:
        click.echo(f"run {run_id} cancelled")
    else:
        click.echo(
            f"run {run_id}: cancel requested (CANCELLING); its driver stops it within a second"
        )


def _show_task(fr: FlowRun, task: TaskRun, as_json: bool) -> None:
    if as_json:
        doc = task_json(task)
        doc["run_id"] = fr.id
        doc["history"] = history_json(task)
        echo_json(doc)
        return
    out = console()
    item = f", item {task.map_index}" if task.map_index is not None else ""
    out.print(f"[bold]{escape(task.key)}[/] ({escape(task.name)}{item})  "
              f"{state_markup(task.state)}")  # fmt: skip
    out.print(f"run {fr.id} ({fr.flow_name}), Dask key {task.dask_key}", markup=False)
    out.print(
        f"started {when(task.started)} UTC, ran {duration(task.duration)}, "
        f"attempts {task.attempts}, worker {task.worker or '-'}",
        markup=False,
    )
    if task.result_location:
        out.print(
            f"result {task.result_location} ({size(task.result_size)}, "
            f"{task.result_serializer or 'cloudpickle'})",
            markup=False,
        )
    if task.cache_key:
        out.print(f"cache key {task.cache_key}", markup=False)
    attempts = table("ATTEMPT", "STARTED (UTC)", "DURATION", "ENDED", "MESSAGE", wrap=("MESSAGE",))
    for attempt in task_table.attempts(task):
        took = None if attempt.ended is None else attempt.ended - attempt.started
        attempts.add_row(
            str(attempt.number) if attempt.number else "-",
            clock(attempt.started),
            duration(took) if attempt.number else "",
            state_markup(attempt.state),
            escape(inert(attempt.message)),
        )
    print_table(out, attempts)
    if task.traceback:
        out.print(f"traceback of attempt {task.attempts}:", markup=False)
        out.print(inert(task.traceback.rstrip()), markup=False, highlight=False, soft_wrap=True)
    elif task.state.is_failure:
        error = inert(error_text(task.error_type, task.error))
        out.print(f"error: {error}", markup=False, style="red")


def cluster_alive(fr: FlowRun) -> bool:
    """Does the run's cluster still answer? (A TCP connect to its scheduler, or to the dashboard
    of an in-process cluster; a quick probe, never a Dask client.)"""
    target = fr.cluster_address or ""
    if not target.startswith(("tcp://", "tls://")):
        target = fr.dashboard_link or ""
    parts = urlsplit(target)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        return False
    if not host or not port:
        return False
    try:
        with socket.create_connection((host, port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def _add_approvals() -> None:
    from dagflow.cli.approvals import approve, reject

    runs.add_command(approve)
    runs.add_command(reject)


_add_approvals()
