"""`dagflow logs RUN`: a run's log records, with its task retries and failures among them.

One time-ordered stream of what happened in a run: the records of `get_run_logger()` from the
flow and its tasks, and each task attempt that failed (`RETRYING`, `FAILED`, `TIMED_OUT`,
`CRASHED`) with its message, and the traceback of a task's last failure below it. `--task`
takes a task name or key; one the run does not have is an error (exit 2), unless the run is
still going and `--follow` waits for it. `--json` prints one JSON object per line (JSON Lines),
so a followed stream can be read as it comes.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import click

from dagflow import runtime
from dagflow.cli.output import clock, iso
from dagflow.core.history import RunHistory, Setback
from dagflow.core.keys import logical
from dagflow.core.runs import LogEvent
from dagflow.core.text import inert
from dagflow.errors import UsageError

FOLLOW_POLL_SECONDS = 0.5
Entry = LogEvent | Setback


@click.command("logs", short_help="A run's logs, retries and failures, in order.")
@click.argument("run")
@click.option("--task", "task", help="Only this task's records (a task name or key).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line (documented).")
def logs_command(run: str, task: str | None, follow: bool, as_json: bool) -> None:
    """Print a run's log records, task failures and retries (with tracebacks), in time order."""
    store = runtime.run_history()
    run_id = store.resolve(run)
    if task is not None:
        _check_task(store, run_id, task, follow)
    marks = (0, 0)
    while True:
        done = not follow or _finished(store, run_id)
        marks = print_new(store, run_id, task, marks, as_json)
        if done:
            return
        time.sleep(FOLLOW_POLL_SECONDS)


def _finished(store: RunHistory, run_id: str) -> bool:
    state = store.run_state(run_id)
    return state is None or state.is_final


def _check_task(store: RunHistory, run_id: str, task: str, follow: bool) -> None:
    if store.has_task(run_id, task) or (follow and not _finished(store, run_id)):
        return
    names = store.task_names(run_id)
    known = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "") if names else "none"
    raise UsageError(f"no task {task!r} in run {run_id}; its tasks: {known}")


def print_new(
    store: RunHistory, run_id: str, task: str | None, marks: tuple[int, int], as_json: bool
) -> tuple[int, int]:
    """Print what was recorded after `marks` (last log row, last history row), in time order."""
    last_log, last_step = marks
    entries: list[Entry] = []
    for row_id, ev in store.logs_after(run_id, task, last_log):
        entries.append(ev)
        last_log = row_id
    for row_id, setback in store.setbacks(run_id, task, last_step):
        entries.append(setback)
        last_step = row_id
    entries.sort(key=lambda e: e.time)
    for entry in entries:
        click.echo(json.dumps(entry_json(entry)) if as_json else format_entry(entry))
    return last_log, last_step


def format_entry(entry: Entry) -> str:
    """`12:00:01.250 INFO    [key] message`; a setback's traceback follows, indented."""
    if isinstance(entry, LogEvent):
        where = f" [{logical(entry.task_key)}]" if entry.task_key else ""
        level = logging.getLevelName(entry.level)
        return f"{clock(entry.time)} {level:<7}{where} {inert(entry.message)}"
    attempt = f"attempt {entry.attempt}: " if entry.attempt else ""
    line = (
        f"{clock(entry.time)} {entry.state.value:<7} [{entry.key}] {attempt}{inert(entry.message)}"
    )
    if entry.traceback:
        tb = inert(entry.traceback.rstrip())
        line += "\n" + "\n".join("    " + t for t in tb.splitlines())
    return line


def entry_json(entry: Entry) -> dict[str, Any]:
    if isinstance(entry, LogEvent):
        return {
            "kind": "log",
            "time": iso(entry.time),
            "level": logging.getLevelName(entry.level),
            "task_key": logical(entry.task_key) if entry.task_key else None,
            "task_name": entry.task_name,
            "worker": entry.worker,
            "message": entry.message,
        }
    return {
        "kind": "state",
        "time": iso(entry.time),
        "state": entry.state.value,
        "task_key": entry.key,
        "task_name": entry.name,
        "attempt": entry.attempt,
        "message": entry.message,
        "error_type": entry.error_type,
        "traceback": entry.traceback,
    }
