"""Which ticks to create now: the scheduler's plan, per deployment, from an instant passed in.

For each deployment the planner keeps `until`, the instant up to which every tick is recorded
(created, or deliberately left out), and `refill_at`, when to look again. At each look it returns:

- the **missed** ticks in (`until`, `now`] (after downtime or a pause of the process): with
  `catchup=False` only the latest of them, with `catchup=True` all of them, oldest first (at most
  `catchup_cap` per look; the rest follow at the next look);
- the **upcoming** ticks in (`now`, `now + horizon_seconds`], at most `horizon_ticks`; and at
  least the next tick, however far, so that the next run is always visible.

It looks again when the first upcoming tick is due, or when the next tick not yet created enters
the horizon. Asking twice, from two processes or after a restart, is harmless: the store creates
a tick's run once per idempotency key. No clock and no I/O here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dagflow.core.deployments import Deployment

WINDOWS = (60.0, 3600.0, 86400.0, 31 * 86400.0, 400 * 86400.0, math.inf)


@dataclass(frozen=True, slots=True)
class PlanOptions:
    horizon_seconds: float = 3600.0
    horizon_ticks: int = 10
    catchup_cap: int = 1000


@dataclass(slots=True)
class Planner:
    """Tick planning for the deployments one serve process serves."""

    options: PlanOptions = field(default_factory=PlanOptions)
    until: dict[str, float] = field(default_factory=dict)
    refill_at: dict[str, float] = field(default_factory=dict)
    ahead: dict[str, list[float]] = field(default_factory=dict)  # upcoming ticks created

    def start(self, dep: Deployment, last_tick: float | None, now: float) -> None:
        """Plan `dep` from its last recorded tick (None: a new deployment, from `now`)."""
        self.until[dep.full_name] = last_tick if last_tick is not None else now
        self.refill_at[dep.full_name] = now
        # ticks recorded ahead by an earlier process count as planned ahead
        ahead = []
        if last_tick is not None:
            ahead = dep.ticks(now, last_tick, self.options.horizon_ticks)
        self.ahead[dep.full_name] = ahead

    def skip_to(self, dep: Deployment, now: float) -> None:
        """Leave out every tick up to `now` (the deployment is paused)."""
        key = dep.full_name
        self.until[key] = max(self.until.get(key, now), now)
        self.refill_at[key] = now
        self.ahead[key] = []

    def due(self, dep: Deployment, now: float) -> list[float]:
        """The ticks to create for `dep` now (empty until its next look)."""
        key = dep.full_name
        if now < self.refill_at.get(key, now) or not dep.schedules:
            return []
        opts = self.options
        until = self.until.get(key, now)
        missed: list[float] = []
        if until < now:
            if dep.catchup:
                missed = dep.ticks(until, now, opts.catchup_cap)
                if len(missed) == opts.catchup_cap:  # more to come: the rest at the next look
                    self.until[key] = missed[-1]
                    self.refill_at[key] = now
                    return missed
                until = now
            else:
                missed = _latest(dep, until, now)
                until = now
        ahead = [t for t in self.ahead.get(key, ()) if t > now]
        room = opts.horizon_ticks - len(ahead)
        upcoming = dep.ticks(until, now + opts.horizon_seconds, room) if room > 0 else []
        if not upcoming and not ahead and until <= now:
            nxt = dep.next_fire(until)
            upcoming = [nxt] if nxt is not None else []
        if upcoming:
            until = upcoming[-1]
        self.until[key] = until
        ahead += upcoming
        self.ahead[key] = ahead
        if len(ahead) >= opts.horizon_ticks:
            refill = ahead[0]  # enough ahead: look again when the first is due
        else:
            later = dep.next_fire(until)  # when the next one enters the horizon, or is due
            refill = min(
                ahead[0] if ahead else math.inf,
                later - opts.horizon_seconds if later is not None else math.inf,
            )
        self.refill_at[key] = refill
        return [*missed, *upcoming]

    def next_look(self) -> float:
        """The earliest instant at which some deployment needs a look."""
        return min(self.refill_at.values(), default=math.inf)


def _latest(dep: Deployment, until: float, now: float) -> list[float]:
    """The latest tick in (`until`, `now`], found without walking the whole gap."""
    first = dep.next_fire(until)
    if first is None or first > now:
        return []
    for window in WINDOWS:
        found = dep.ticks(max(until, now - window), now)
        if found:
            return [found[-1]]
    return []
