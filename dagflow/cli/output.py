"""How the CLI writes: JSON documents, times, durations, sizes, states, errors, tables.

`--json` output is stable and documented in `docs/store.md`: times are ISO 8601 strings in UTC
(or null), durations are seconds. Human output uses rich, with markup off for stored text.
A table is as wide as the terminal; when stdout is not a terminal (a pipe, a file) nothing is
cut: rows keep their full width, so `dagflow runs ls | grep COMPLETED` sees every row.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from dagflow.core.runs import FlowRun, TaskRun
from dagflow.core.states import StateType

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
    "CANCELLING": "yellow",
    "CANCELLED": "yellow",
}
PIPE_WIDTH = 10_000  # "no width": what a table may take when nobody's screen is in the way


def one_line(text: str) -> str:
    """`text` on one line: runs of white space with a line break become one space."""
    return re.sub(r"\s*\n\s*", " ", text).strip()


def iso(t: float | None) -> str | None:
    """An epoch time as ISO 8601 in UTC (what every JSON document carries), or None."""
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def clock(t: float) -> str:
    """`HH:MM:SS.mmm` in UTC: a log line's time."""
    return datetime.fromtimestamp(t, timezone.utc).strftime("%H:%M:%S.%f")[:-3]


def duration(seconds: float | None) -> str:
    """`1.97 s`, `12.00 ms`, `20m 34s`: Dask's own time format (`dask.utils.format_time`),
    written here because importing dask costs a read-only command like `runs ls` ~0.1 s."""
    if seconds is None:
        return "-"
    n = seconds
    if n > 2 * 24 * 3600:
        days = int(n / 86400)
        return f"{days}d {int((n - days * 86400) / 3600)}hr"
    if n > 2 * 3600:
        hours = int(n / 3600)
        return f"{hours}hr {int((n - hours * 3600) / 60)}m"
    if n > 600:
        minutes = int(n / 60)
        return f"{minutes}m {int(n - minutes * 60)}s"
    if n >= 1:
        return f"{n:.2f} s"
    if n >= 1e-3:
        return f"{n * 1e3:.2f} ms"
    return f"{n * 1e6:.2f} us"


def size(n: float | None) -> str:
    """`1.50 GiB`: Dask's own byte format."""
    if n is None:
        return "-"
    from dask.utils import format_bytes

    return format_bytes(int(n))


def state_markup(state: StateType | str) -> str:
    value = state.value if isinstance(state, StateType) else state
    style = STATE_STYLE.get(value, "")
    return f"[{style}]{value}[/]" if style else value


def error_text(error_type: str | None, error: str | None) -> str:
    """A task's error as one text: its message, with its type in front unless it has it."""
    message = (error or "").strip()
    if not error_type or message.startswith(f"{error_type}:") or message == error_type:
        return message
    return f"{error_type}: {message}" if message else error_type


def first_line(text: str | None, width: int | None = None) -> str:
    if not text or not text.strip():
        return ""
    line = text.strip().splitlines()[0]
    if width is None or len(line) <= width:
        return line
    return line[: width - 1] + "…"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=repr))


def console(stderr: bool = False) -> Console:
    """A console for tables and lines: the terminal's width, or unlimited in a pipe."""
    out = Console(highlight=False, soft_wrap=False, stderr=stderr)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=False, stderr=stderr, width=PIPE_WIDTH)
    return out


def table(*columns: str, wrap: tuple[str, ...] = ()) -> Table:
    """A borderless table; only the `wrap` columns may wrap, on a terminal."""
    out = Table(box=None, header_style="bold", pad_edge=False)
    for name in columns:
        out.add_column(name, no_wrap=name not in wrap, overflow="fold")
    return out


def print_table(out: Console, rows: Table) -> None:
    if out.width >= PIPE_WIDTH:
        # a pipe: each row on one line, trailing padding dropped
        with out.capture() as captured:
            out.print(rows)
        for line in captured.get().splitlines():
            click.echo(line.rstrip())
        return
    out.print(rows)


def run_json(run: FlowRun, task_counts: dict[StateType, int] | None = None) -> dict[str, Any]:
    """The documented JSON of a run; `task_counts` if known, else counted from its task runs."""
    found = run.counts() if task_counts is None else task_counts
    counts = {state.value: n for state, n in sorted(found.items())}
    return {
        "id": run.id,
        "flow": run.flow_name,
        "flow_version": run.flow_version,
        "state": run.state.value,
        "parameters": run.parameters,
        "attempts": run.attempts,
        "started": iso(run.started),
        "ended": iso(run.ended),
        "duration": run.running_time(),
        "wall_time": run.duration,
        "error_type": run.error_type,
        "error": run.error,
        "parent_run_id": run.parent_run_id,
        "cluster_address": run.cluster_address,
        "dashboard_link": run.dashboard_link,
        "entrypoint": run.entrypoint,
        "deployment": run.deployment,
        "scheduled_time": iso(run.scheduled_time),
        "origin": run.origin,
        "event_id": run.event_id,
        "served_by": run.served_by,
        "late": run.late,
        "task_counts": counts,
    }


def task_json(task: TaskRun) -> dict[str, Any]:
    return {
        "key": task.key,
        "dask_key": task.dask_key,
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
        "traceback": task.traceback,
        "result_location": task.result_location,
        "result_size": task.result_size,
        "result_serializer": task.result_serializer,
        "cache_key": task.cache_key,
    }


def history_json(task_or_run: TaskRun | FlowRun) -> list[dict[str, Any]]:
    return [
        {
            "from": step.from_state.value if step.from_state else None,
            "to": step.to_state.value,
            "time": iso(step.time),
            "attempt": step.attempt,
            "message": step.message,
        }
        for step in task_or_run.history
    ]
