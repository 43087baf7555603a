"""How the items of a `.map` are cut into chunks: one Dask task runs one chunk of items.

Dask costs a few milliseconds of scheduler and network time per task; an item that takes 50 us
pays that cost forty times over. So a `.map` runs its items in chunks (slices of consecutive
items), each item keeping its own states, retries, timeout, logs and result. This module only
decides sizes; it is pure: durations and thread counts come in as arguments.

The adaptive policy (a task without `batch_size`):

- a few **probe** items run first, one per Dask task, so that long items are never queued behind
  each other before anything is known (`probe_count`);
- from their measured durations, later chunks are sized to take about `TARGET_SECONDS`, but
  never so large that fewer than `CHUNKS_PER_THREAD` chunks exist per worker thread (every thread
  stays busy, and a straggler chunk is short); items that each take longer than the target are
  never batched (`adaptive_size`).

`batch_size=N` fixes the size; `batch_size=1` is one Dask task per item, the unbatched path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

TARGET_SECONDS = 0.15  # what one chunk should take: well above Dask's per-task cost
CHUNKS_PER_THREAD = 2  # at least this many chunks per worker thread, when there are items enough
MIN_PROBES = 4  # probe items of an adaptive map (at least; one per worker thread if more)
MIN_ADAPTIVE_ITEMS = 16  # a smaller map runs one item per task: there is nothing to win
PROBE_WAIT_SECONDS = 2 * TARGET_SECONDS  # probes still running then are long items: no batching
PROBE_START_SECONDS = 5.0  # probes not started by then wait for an upstream: do not hold the body

Chunk = tuple[int, int]  # [start, stop) of item offsets within a call


def probe_count(count: int, threads: int) -> int:
    """How many items of an adaptive map of `count` items run first, one per task, to be timed."""
    return min(count, max(MIN_PROBES, threads))


def adaptive_size(
    seconds_per_item: float | None, remaining: int, threads: int, target: float = TARGET_SECONDS
) -> int:
    """Items per chunk for `remaining` items taking `seconds_per_item` each (None: longer than
    the probes were waited for) on `threads` worker threads."""
    if seconds_per_item is None or seconds_per_item >= target or remaining <= 0:
        return 1
    by_time = int(target / max(seconds_per_item, 1e-6))
    by_threads = math.ceil(remaining / (max(threads, 1) * CHUNKS_PER_THREAD))
    return max(1, min(by_time, by_threads))


def estimate(durations: Iterable[float]) -> float | None:
    """Seconds per item from measured item durations: their median (a slow first call, such as
    an import, does not make every later chunk small); None when nothing was measured."""
    values = sorted(durations)
    if not values:
        return None
    return values[len(values) // 2]


def cut(start: int, stop: int, size: int) -> list[Chunk]:
    """`[start, stop)` cut into consecutive chunks of `size` items (the last may be shorter)."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [(a, min(a + size, stop)) for a in range(start, stop, size)]


def describe(task: str, count: int, chunks: list[Chunk], seconds_per_item: float | None) -> str:
    """The run-log line that records how a map was cut (`runs show` and the pages show it)."""
    first = chunks[0][1] - chunks[0][0]
    last = chunks[-1][1] - chunks[-1][0]
    shown = f"{first} items" if last == first else f"{first} items (the last {last})"
    measured = ""
    if seconds_per_item is not None:
        measured = f"; measured ~{seconds_per_item * 1e3:.3g} ms/item"
    return f"task {task!r}: {count} items in {len(chunks)} Dask tasks of {shown}{measured}"
