"""Schedules as people read them, and a deployment's next fire times, for the API and pages.

- `in_words(schedule)`: a schedule as a sentence (cron-descriptor for cron strings), remembered
  per schedule.
- `next_ticks(deployment, now)`: its next fire times from its schedules, kept until the first of
  them passes (cron arithmetic costs about a millisecond a tick; a list of a thousand
  deployments is asked for often).

Pure: `now` is passed in; nothing here reads the database or imports user code.
"""

from __future__ import annotations

import functools

from dagflow.core.deployments import Deployment
from dagflow.core.schedules import CronSchedule, Schedule

NEXT_TICKS = 5
HORIZON = 400 * 24 * 3600.0  # look a little over a year ahead for the next ticks
MAX_CACHED = 20_000

_ticks: dict[tuple[tuple[Schedule, ...], int], list[float]] = {}


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
