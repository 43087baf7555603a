"""Schedules: when a deployment's runs are due, computed from an instant passed in.

Two kinds, both frozen values with one question to answer, `next_after(instant)`: the first fire
time strictly after `instant` (seconds since the epoch, UTC). Nothing here reads a clock.

- `CronSchedule`: a cron string (5 fields, or 6 with seconds first, or an alias such as `@daily`),
  evaluated on the wall clock of an IANA time zone (croniter + zoneinfo). Daylight saving:
  * a wall time that does not exist (spring forward: 02:30 on the night clocks go 02:00 -> 03:00)
    fires once, at the first valid instant after the gap (03:00 local);
  * a wall time that happens twice (fall back: 02:30 on the night clocks go 03:00 -> 02:00) fires
    once, at its first occurrence (the earlier offset);
  * two wall times that land on one instant (several in one gap) fire once.
  The instants a cron schedule fires at therefore only grow, and each fires once.
- `IntervalSchedule`: every `every` seconds of elapsed time from an `anchor` instant. It ignores
  wall clocks and daylight saving on purpose (a 24 h interval drifts by an hour in local time
  across a transition; use a cron string for "every day at 02:00"). Arithmetic is done in integer
  microseconds, so every process computes the very same tick instants (they are identity keys).

`schedule_from_spec` / `Schedule.spec()` are the plain-dict form the store and the YAML file use.
A bad cron string, time zone or interval raises `DeploymentError` naming the field.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dagflow.errors import DeploymentError

UTC = timezone.utc
US = 1_000_000  # microseconds per second
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DEFAULT_ANCHOR = 946684800.0  # 2000-01-01T00:00:00Z: intervals of whole days tick at midnight UTC
_MAX_STEPS = 200_000  # wall times tried before giving up (a cron that keeps landing in the past)


def zone(name: str | None, where: str = "timezone") -> ZoneInfo:
    """The IANA time zone `name` (UTC when None); `DeploymentError` naming `where` otherwise."""
    if name is None:
        return ZoneInfo("UTC")
    if not isinstance(name, str) or not name.strip():
        raise DeploymentError(f"{where}: expected an IANA time zone name, got {name!r}")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise DeploymentError(
            f"{where}: unknown time zone {name!r} (use an IANA name such as Europe/Paris or UTC)"
        ) from None


def utc_iso(instant: float) -> str:
    """An instant as ISO 8601 text in UTC, to the second (microseconds if it has them)."""
    moment = datetime.fromtimestamp(instant, UTC)
    return moment.isoformat(timespec="seconds" if moment.microsecond == 0 else "microseconds")


def parse_instant(
    value: str | float | datetime, where: str = "time", tz: str | None = None
) -> float:
    """An instant from an ISO 8601 string, a datetime or epoch seconds; a time without an offset
    is a wall time of `tz` (UTC when None)."""
    if isinstance(value, bool):
        raise DeploymentError(f"{where}: expected an ISO 8601 time, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise DeploymentError(
                f"{where}: {value!r} is not an ISO 8601 time (e.g. 2026-01-01T02:00:00+01:00)"
            ) from None
    if not isinstance(value, datetime):
        raise DeploymentError(f"{where}: expected an ISO 8601 time, got {type(value).__name__}")
    if value.tzinfo is None:
        return wall_to_instant(value, zone(tz))
    return value.timestamp()


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A cron string evaluated on the wall clock of `timezone` (see the module docstring)."""

    cron: str
    timezone: str = "UTC"
    _fields: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        zone(self.timezone)
        text = self.cron.strip() if isinstance(self.cron, str) else ""
        if not text:
            raise DeploymentError(f"cron: expected a cron string, got {self.cron!r}")
        fields = ALIASES.get(text.lower(), text)
        if fields.startswith("@"):
            raise DeploymentError(
                f"cron: unknown alias {text!r} (one of {', '.join(sorted(ALIASES))})"
            )
        if len(fields.split()) not in (5, 6):
            raise DeploymentError(
                f"cron: {text!r} has {len(fields.split())} fields; expected 5 (minute hour day "
                "month weekday) or 6 (second first), or an alias such as @daily"
            )
        _probe(fields, text)
        object.__setattr__(self, "_fields", fields)

    @property
    def kind(self) -> str:
        return "cron"

    def next_after(self, instant: float) -> float:
        """The first instant strictly after `instant` at which the schedule fires."""
        from croniter import croniter

        tz = zone(self.timezone)
        wall = datetime.fromtimestamp(instant, tz).replace(tzinfo=None)
        it = croniter(self._fields, wall, second_at_beginning=True)
        for _ in range(_MAX_STEPS):
            candidate = wall_to_instant(it.get_next(datetime), tz)
            if candidate > instant:
                return candidate
        raise DeploymentError(f"cron: {self.cron!r} found no fire time after {utc_iso(instant)}")

    def spec(self) -> dict[str, Any]:
        return {"cron": self.cron, "timezone": self.timezone}

    def describe(self) -> str:
        return f"cron {self.cron!r} ({self.timezone})"


@functools.lru_cache(maxsize=4096)
def _probe(fields: str, text: str) -> None:
    """Refuse a cron string croniter cannot evaluate (remembered: schedules are rebuilt from
    their rows on every read, and a probe costs about a millisecond)."""
    from croniter import CroniterError, croniter

    try:
        probe = croniter(fields, datetime(2000, 1, 1), second_at_beginning=True)
        probe.get_next(datetime)
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DeploymentError(f"cron: invalid cron string {text!r}: {reason}") from None


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """Every `every` seconds of elapsed time, on the grid of `anchor` (an instant)."""

    every: float
    anchor: float = DEFAULT_ANCHOR
    timezone: str = "UTC"  # shown with the anchor; intervals themselves ignore wall clocks

    def __post_init__(self) -> None:
        every = self.every
        if isinstance(every, timedelta):
            every = every.total_seconds()
        if isinstance(every, bool) or not isinstance(every, int | float):
            raise DeploymentError(f"interval: expected seconds or a timedelta, got {every!r}")
        if not every > 0 or every == float("inf"):
            raise DeploymentError(f"interval: must be a positive number of seconds, got {every!r}")
        if round(every * US) < 1000:
            raise DeploymentError(f"interval: must be at least 1 ms, got {every!r}")
        zone(self.timezone)
        object.__setattr__(self, "every", float(every))
        object.__setattr__(self, "anchor", parse_instant(self.anchor, "anchor", self.timezone))

    @property
    def kind(self) -> str:
        return "interval"

    def next_after(self, instant: float) -> float:
        every = round(self.every * US)
        anchor = round(self.anchor * US)
        # to the nearest microsecond, so a tick handed back in (a float) counts as passed
        now = math.floor(instant * US + 0.5)
        steps = (now - anchor) // every + 1
        return (anchor + steps * every) / US

    def spec(self) -> dict[str, Any]:
        return {"interval": self.every, "anchor": utc_iso(self.anchor), "timezone": self.timezone}

    def describe(self) -> str:
        return f"every {self.every:g}s from {utc_iso(self.anchor)}"


Schedule = CronSchedule | IntervalSchedule


def wall_to_instant(wall: datetime, tz: ZoneInfo) -> float:
    """The instant a naive wall time of `tz` stands for: the first occurrence of an ambiguous
    one; the end of the gap for one that does not exist."""
    first = wall.replace(tzinfo=tz, fold=0)
    instant = first.timestamp()
    if datetime.fromtimestamp(instant, tz).replace(tzinfo=None) == wall:
        return instant  # it exists (the earlier of two, if it happens twice)
    # In a gap: fold=0 and fold=1 bracket the transition; find its instant (whole seconds).
    lo, hi = sorted((instant, wall.replace(tzinfo=tz, fold=1).timestamp()))
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    lo_s, hi_s = int(lo), int(hi) + 1
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo_s = mid
        else:
            hi_s = mid
    return float(hi_s)


def ticks(
    schedule: Schedule, after: float, until: float, limit: int | None = None
) -> Iterator[float]:
    """Fire times in (`after`, `until`], oldest first, at most `limit` of them."""
    count = 0
    t = schedule.next_after(after)
    while t <= until and (limit is None or count < limit):
        yield t
        count += 1
        t = schedule.next_after(t)


def merged_ticks(
    schedules: tuple[Schedule, ...], after: float, until: float, limit: int | None = None
) -> list[float]:
    """Fire times of several schedules in (`after`, `until`]: sorted, each instant once."""
    found: set[float] = set()
    for schedule in schedules:
        found.update(ticks(schedule, after, until, limit))
    ordered = sorted(found)
    return ordered if limit is None else ordered[:limit]


def next_fire(schedules: tuple[Schedule, ...], after: float) -> float | None:
    """The earliest fire time of any of `schedules` strictly after `after` (None if none)."""
    return min((s.next_after(after) for s in schedules), default=None)


def schedule_from_spec(spec: Mapping[str, Any], where: str = "schedule") -> Schedule:
    """A schedule from its plain form: `{"cron", "timezone"}` or `{"interval", "anchor", ...}`."""
    keys = set(spec)
    try:
        if "cron" in keys and "interval" not in keys:
            _only(keys, {"cron", "timezone"}, where)
            return CronSchedule(spec["cron"], spec.get("timezone") or "UTC")
        if "interval" in keys and "cron" not in keys:
            _only(keys, {"interval", "anchor", "timezone"}, where)
            anchor = spec.get("anchor")
            return IntervalSchedule(
                spec["interval"],
                DEFAULT_ANCHOR if anchor is None else anchor,
                spec.get("timezone") or "UTC",
            )
    except DeploymentError as exc:
        raise DeploymentError(f"{where}.{exc}") from None
    raise DeploymentError(f"{where}: give exactly one of cron or interval")


def _only(keys: set[str], allowed: set[str], where: str) -> None:
    extra = keys - allowed
    if extra:
        raise DeploymentError(
            f"{sorted(extra)[0]}: unknown field (a schedule takes {', '.join(sorted(allowed))})"
        )
