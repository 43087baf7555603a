"""How the CLI writes: JSON documents, times, durations, states, one-line texts.

`--json` output is stable and documented in `docs/store.md`: times are ISO 8601 strings in UTC
(or null), durations are seconds. Human output uses rich, with markup off for stored text.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import click
from rich.console import Console

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
    "CANCELLED": "yellow",
}


def one_line(text: str) -> str:
    """`text` on one line: runs of white space with a line break become one space."""
    return re.sub(r"\s*\n\s*", " ", text).strip()


def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def state_markup(state: StateType) -> str:
    style = STATE_STYLE.get(state.value, "")
    return f"[{style}]{state.value}[/]" if style else state.value


def short_error(text: str | None, width: int = 80) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, default=repr))


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


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
        "deployment": run.deployment,
        "scheduled_time": iso(run.scheduled_time),
        "origin": run.origin,
        "served_by": run.served_by,
        "late": run.late,
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
