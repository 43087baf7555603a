"""Which calls of a wave run in chunks, and how large: the driver's side of batching.

`plan_round` takes a wave's pending calls in call order and returns what to submit now: every
call up to the first adaptive map whose item duration is not known yet, of which only a few
probe items go now (one Dask task each). The rest waits for the next round, after `measure` has
timed the probes from their reports. A map with `batch_size=N` is cut into chunks of N at once;
`batch_size=1` (and a small map) runs one task per item, exactly as without batching. The sizes
chosen are written to the run's log (`core/batching.describe`).

Maps that consume another map item by item (`b.map(a.map(xs))`, see `core/fusion.py`) are fused
into their head's chunks: one Dask task runs a chunk of items through every stage. Every stage
without a size of its own is probed first (the same first items of each), and the chunk is sized
by the stages' summed item time.

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
from dagflow.core.fusion import fusion_groups
from dagflow.core.graph import Call
from dagflow.core.keys import key_text

Chunks = dict[int, list[batching.Chunk]]
Fused = dict[int, list[tuple[Call, int]]]  # id(head) -> [(follower, index of its source)]


@dataclass(slots=True)
class Round:
    """What to submit now: calls, how the chunked ones are cut, which maps are fused into them,
    and the probe parts to time (if any)."""

    calls: list[Call]
    chunks: Chunks
    probes: list[Call]
    rest: list[Call]
    notes: list[str] = field(default_factory=list)  # run-log lines: how each map was cut
    fused: Fused = field(default_factory=dict)  # id(head) -> its followers (`core/fusion.py`)


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
        out = Round([], {}, [], [])
        groups = fusion_groups(calls)
        placed: set[int] = set()  # followers already submitted with their head
        for n, call in enumerate(calls):
            if id(call) in placed:
                continue
            followers = groups.get(id(call))
            if followers:
                stages = [call, *(f for f, _ in followers)]
                unknown = [
                    s for s in stages
                    if s.task.options.batch_size is None and s.task.slug not in self.estimates
                ]  # fmt: skip
                if unknown and call.count >= batching.MIN_ADAPTIVE_ITEMS:
                    return self._probe_group(out, calls, n, stages, unknown)
                if self._fuse(out, stages, followers):
                    placed.update(id(s) for s in stages[1:])
                    continue
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
                    probe = call.part(0, probes)
                    out.probes.append(probe)
                    out.calls.append(probe)
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

    def _fuse(self, out: Round, stages: list[Call], followers: list[tuple[Call, int]]) -> bool:
        """Cut a group's head into chunks that run every stage; False when it does not fuse."""
        head = stages[0]
        size = self._group_size(stages)
        if size is None or size < 2:
            return False
        chunks = batching.cut(head.start, head.start + head.count, size)
        out.chunks[id(head)] = chunks
        out.fused[id(head)] = followers
        note = batching.describe(head.task.name, head.count, chunks, self._group_estimate(stages))
        names = ", ".join(repr(s.task.name) for s in stages[1:])
        out.notes.append(f"{note}; fused with {names}")
        out.calls.extend(stages)
        return True

    def _probe_group(
        self, out: Round, calls: list[Call], n: int, stages: list[Call], unknown: list[Call]
    ) -> Round:
        """Time a few items of every stage of a fused group that has no estimate yet: the same
        first items of each, one task per item; the rest of the group waits for the next round."""
        head = stages[0]
        probes = batching.probe_count(head.count, self.threads)
        parts = {id(s): s.part(0, probes) for s in stages}
        out.calls.extend(parts.values())
        out.probes.extend(parts[id(s)] for s in unknown)
        members = {id(s) for s in stages}
        out.rest = [head.part(probes, head.count)]
        out.rest += [
            c.part(probes, c.count) if id(c) in members else c for c in calls[n + 1 :]
        ]  # fmt: skip
        return out

    def _group_estimate(self, stages: list[Call]) -> float | None:
        """Seconds per item of a fused group: the sum of its adaptive stages' estimates (None
        when a stage's items are long, or when every stage has a fixed size)."""
        adaptive = [s for s in stages if s.task.options.batch_size is None]
        if not adaptive:
            return None
        known = [self.estimates.get(s.task.slug) for s in adaptive]
        if any(e is None for e in known):
            return None
        return sum(e for e in known if e is not None)

    def _group_size(self, stages: list[Call]) -> int | None:
        """Items per fused chunk: the smallest fixed `batch_size` of its stages, and for the
        adaptive ones the size their summed item time allows; None: not fused (a stage's items
        are long, or the map is too small to batch without a fixed size)."""
        head = stages[0]
        fixed = [s.task.options.batch_size for s in stages if s.task.options.batch_size]
        adaptive = [s for s in stages if s.task.options.batch_size is None]
        sizes = [size for size in fixed if size is not None]
        if adaptive:
            if head.count < batching.MIN_ADAPTIVE_ITEMS:
                return None
            per_item = self._group_estimate(stages)
            if per_item is None:
                return None
            sizes.append(batching.adaptive_size(per_item, head.count, self.threads))
        return min(sizes) if sizes else None

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
