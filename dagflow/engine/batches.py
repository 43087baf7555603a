"""Which calls of a wave run in chunks, and how large: the driver's side of batching.

`plan_round` takes a wave's pending calls in call order and returns what to submit now: every
call up to the first adaptive map whose item duration is not known yet, of which only a few
probe items go now (one Dask task each). The rest waits for the next round, after `measure` has
timed the probes from their reports. A map with `batch_size=N` is cut into chunks of N at once;
`batch_size=1` (and a small map) runs one task per item, exactly as without batching. The sizes
chosen are written to the run's log (`core/batching.describe`).

Estimates are kept per task for the flow attempt, so a task mapped again in a later wave (or in a
loop) is not probed again. A wave holds one round per adaptive task it maps for the first time;
each round costs the driver the probes' run time plus one Dask round trip. Probes that cannot
start (their upstream still runs) are waited for `PROBE_START_SECONDS` at most; the rest of that
map then runs one item per task.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dagflow.core import batching
from dagflow.core.graph import Call
from dagflow.core.keys import key_text

Chunks = dict[int, list[batching.Chunk]]


@dataclass(slots=True)
class Round:
    """What to submit now: calls, how the chunked ones are cut, and the probe part (if any)."""

    calls: list[Call]
    chunks: Chunks
    probe: Call | None
    rest: list[Call]
    notes: list[str] = field(default_factory=list)  # run-log lines: how each map was cut


class MapPlanner:
    """Decides the chunks of one flow attempt's maps; remembers measured item durations."""

    def __init__(self, threads: Callable[[], int]) -> None:
        self._threads = threads
        self._known_threads: int | None = None
        self.estimates: dict[str, float | None] = {}  # task slug -> seconds per item

    @property
    def threads(self) -> int:
        if self._known_threads is None:
            self._known_threads = max(1, self._threads())
        return self._known_threads

    def plan_round(self, calls: list[Call]) -> Round:
        out = Round([], {}, None, [])
        for n, call in enumerate(calls):
            size = call.task.options.batch_size
            if not call.mapped or size == 1:
                out.calls.append(call)
                continue
            measured: float | None = None
            if size is None:
                if call.count < batching.MIN_ADAPTIVE_ITEMS:
                    out.calls.append(call)
                    continue
                slug = call.task.slug
                if slug not in self.estimates:
                    probes = batching.probe_count(call.count, self.threads)
                    out.probe = call.part(0, probes)
                    out.calls.append(out.probe)
                    out.rest = [call.part(probes, call.count), *calls[n + 1 :]]
                    return out
                measured = self.estimates[slug]
                size = batching.adaptive_size(measured, call.count, self.threads)
            if size > 1:
                chunks = batching.cut(call.start, call.start + call.count, size)
                out.chunks[id(call)] = chunks
                out.notes.append(batching.describe(call.task.name, call.count, chunks, measured))
            out.calls.append(call)
        return out

    def measure(
        self, probe: Call, task_run: Callable[[str], Any], wait: Callable[[float], Any]
    ) -> float | None:
        """Time `probe`'s items from their reports: the median of their durations, or None
        once one has run longer than the target (long items are not batched). `task_run(key)`
        reads the live record; `wait(s)` waits for news at most `s` seconds."""
        keys = [key_text(key) for key in probe.iter_keys()]
        running_since: dict[str, float] = {}
        # Probes that wait for an upstream do not hold the flow body for long: past this, with
        # none running, what was measured decides (nothing: the rest runs unbatched).
        deadline = time.monotonic() + batching.PROBE_START_SECONDS
        while True:
            now = time.monotonic()
            durations: list[float] = []
            done = running = 0
            too_long = False
            for key in keys:
                tr = task_run(key)
                if tr is None:
                    continue
                if tr.state.is_final:
                    done += 1
                    if tr.duration is not None:
                        durations.append(tr.duration)
                elif tr.started is not None:
                    running += 1
                    since = running_since.setdefault(key, now)
                    too_long = too_long or now - since > batching.PROBE_WAIT_SECONDS
            if too_long or any(d >= batching.TARGET_SECONDS for d in durations):
                result = None  # long items: never batched
                break
            if done == len(keys) or (now > deadline and not running):
                # none ran (cached, reused, upstream failed): settling them is cheap
                result = batching.estimate(durations) if durations else (0.0 if done else None)
                break
            wait(0.01)
        self.estimates[probe.task.slug] = result
        return result
