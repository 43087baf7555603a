"""What the server shows and does with deployments, for the API and the pages alike.

- `flow_of(deployment)`: the deployment's flow, loaded from its entrypoint as `dagflow
  deployments run` loads it (the server validates a Run form's parameters with the very code the
  CLI uses, `scheduler.manual.create_run`). Loaded once per version of the file: a file is
  imported again only when its modification time or size changed. Importing runs the user's
  module, so it happens under a lock, with `scheduler.child.LOADING` set (a file calling
  `serve()` at import time does not start a service inside the server). The entrypoint comes from
  the database (what `dagflow serve` registered), never from a request.
- `in_words(schedule)`: a schedule as a sentence (cron-descriptor for cron strings).
- `next_ticks(deployment, now)`: its next fire times, from its schedules (kept until the first
  of them passes).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagflow.core.deployments import Deployment
from dagflow.core.flow import FlowDefinition
from dagflow.core.schedules import CronSchedule, Schedule
from dagflow.errors import DagflowError, UsageError

Flow = FlowDefinition[..., Any]
NEXT_TICKS = 5
HORIZON = 400 * 24 * 3600.0  # look a little over a year ahead for the next ticks

MAX_CACHED = 20_000

_lock = threading.Lock()
_loaded: dict[str, tuple[tuple[int, int] | None, Flow]] = {}
_ticks: dict[tuple[tuple[Schedule, ...], int], list[float]] = {}


def _version(entrypoint: str) -> tuple[int, int] | None:
    """(mtime, size) of the entrypoint's file; None for a module path (imported once)."""
    target = entrypoint.rpartition(":")[0]
    if not (target.endswith(".py") or "/" in target):
        return None
    try:
        st = Path(target).stat()
    except OSError:
        return (-1, -1)  # gone: loading says so in one line
    return (st.st_mtime_ns, st.st_size)


def flow_of(deployment: Deployment) -> Flow:
    """The flow `deployment` runs, loaded from its entrypoint (`UsageError` if it cannot be)."""
    from dagflow.entrypoints import load_flow
    from dagflow.scheduler import child

    entrypoint = deployment.entrypoint
    with _lock:
        version = _version(entrypoint)
        cached = _loaded.get(entrypoint)
        if cached is not None and cached[0] == version:
            return cached[1]
        child.LOADING = True
        try:
            flow = load_flow(entrypoint)
        finally:
            child.LOADING = False
        if flow.name != deployment.flow_name:
            raise UsageError(
                f"{entrypoint} is now flow {flow.name!r}, not {deployment.flow_name!r}"
            )
        _loaded[entrypoint] = (version, flow)
        return flow


@dataclass(frozen=True, slots=True)
class ParameterSchema:
    """A deployment's parameter schema, or why it could not be read here."""

    schema: dict[str, Any] | None
    error: str | None


def parameter_schema(deployment: Deployment) -> ParameterSchema:
    try:
        return ParameterSchema(flow_of(deployment).parameters_schema(), None)
    except DagflowError as exc:
        return ParameterSchema(None, str(exc))


@functools.lru_cache(maxsize=4096)
def in_words(schedule: Schedule) -> str:
    """`Every 5 minutes (UTC)`, `At 03:00, Monday through Friday (Europe/Paris)`, ..."""
    if isinstance(schedule, CronSchedule):
        return f"{_cron_words(schedule.cron)} ({schedule.timezone})"
    return f"Every {_seconds_words(schedule.every)}"


def _cron_words(cron: str) -> str:
    from cron_descriptor import Options, get_description

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    text = cron.strip()
    try:
        if text.startswith("@"):
            return {
                "@hourly": "Every hour",
                "@daily": "Every day at 00:00",
                "@midnight": "Every day at 00:00",
                "@weekly": "Every Sunday at 00:00",
                "@monthly": "On day 1 of every month at 00:00",
                "@yearly": "Every year on January 1 at 00:00",
                "@annually": "Every year on January 1 at 00:00",
            }.get(text.lower(), text)
        return str(get_description(text, options))  # six fields: seconds first, as dagflow
    except Exception:  # a cron string croniter accepts that the describer does not: show it
        return f"cron {text}"


def _seconds_words(seconds: float) -> str:
    if seconds < 60 or seconds % 1:
        return f"{seconds:g} second{'' if seconds == 1 else 's'}"
    parts = []
    rest = int(seconds)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, rest = divmod(rest, size)
        if n:
            parts.append(f"{n} {unit}{'' if n == 1 else 's'}")
    return " ".join(parts)


def next_ticks(deployment: Deployment, now: float, limit: int = NEXT_TICKS) -> list[float]:
    """The next `limit` fire times of `deployment`'s schedules after `now`.

    Cron arithmetic costs about a millisecond a tick (croniter), too much for a list of a
    thousand deployments refreshed every few seconds, so the answer is kept per schedule set
    until its first tick passes: until then the next ticks after `now` are the same ones.
    """
    key = (deployment.schedules, limit)
    cached = _ticks.get(key)
    if cached is not None and cached and cached[0] > now:
        return cached
    found = deployment.ticks(now, now + HORIZON, limit)
    if len(_ticks) >= MAX_CACHED:
        _ticks.clear()
    _ticks[key] = found
    return found
