"""Batched reports from tasks on a worker to the driver, over Dask's event topics.

Task threads `put` small tuples; the worker's event loop sends them as one `log_event` message per
topic. The first record after a quiet spell goes out at once (a long task's RUNNING reaches the
driver before anything can happen to its worker); records that follow within `FLUSH_SECONDS` are
sent together when that window ends. A worker running thousands of short tasks thus sends tens of
messages a second, not thousands. `put` never blocks a task on the network.

A chunk of `.map` items (`chunks.py`) reports through a `ChunkBox`: its records go to the outbox
as one batch at the end of the chunk, or sooner once the oldest has waited `FLUSH_SECONDS`, with
the items that simply succeeded folded into one compact record (`machine.compact_wire`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dagflow.core.reports import compact_wire

FLUSH_SECONDS = 0.05


class Outbox:
    """One per worker: buffers `(topic, record)` pairs and flushes them from the worker's loop."""

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.lock = threading.Lock()
        self.buffer: dict[str, list[Any]] = {}
        self.armed = False

    def put(self, topic: str, record: Any) -> None:
        with self.lock:
            items = self.buffer.get(topic)
            if items is None:
                self.buffer[topic] = [record]
            else:
                items.append(record)
            if self.armed:
                return
            self.armed = True
        self.worker.loop.add_callback(self._arm)

    def put_many(self, topic: str, records: list[Any]) -> None:
        """Several records at once (a chunk of `.map` items reports as one batch)."""
        if not records:
            return
        with self.lock:
            items = self.buffer.get(topic)
            if items is None:
                self.buffer[topic] = list(records)
            else:
                items.extend(records)
            if self.armed:
                return
            self.armed = True
        self.worker.loop.add_callback(self._arm)

    def _arm(self) -> None:
        # On the worker's loop: send now, then hold what follows until the window ends.
        self.flush()
        self.worker.loop.call_later(FLUSH_SECONDS, self._window_end)

    def _window_end(self) -> None:
        with self.lock:
            if not self.buffer:
                self.armed = False
                return
        self._arm()

    def flush(self) -> None:
        """Send everything buffered (on the worker's loop)."""
        with self.lock:
            buffer, self.buffer = self.buffer, {}
        for topic, records in buffer.items():
            self.worker.log_event(topic, records)


class ChunkBox:
    """The outbox of one chunk: buffers its reports and hands them over in batches.

    The chunk's thread puts; the worker's loop looks every `FLUSH_SECONDS` and hands over what
    has waited that long, so the RUNNING report of a long item reaches the driver while it runs
    (a lost worker's running items are then known), at most two windows late.
    """

    __slots__ = ("box", "closed", "first", "lock", "records", "topic")

    def __init__(self, box: Outbox, topic: str) -> None:
        self.box = box
        self.topic = topic
        self.lock = threading.Lock()
        self.records: list[Any] = []
        self.first = 0.0
        self.closed = False
        box.worker.loop.add_callback(self._watch)

    def put(self, topic: str, record: Any) -> None:
        if topic != self.topic:  # not expected: a chunk reports on its run's topic only
            self.box.put(topic, record)
            return
        with self.lock:
            records = self.records
            if not records:
                self.first = time.monotonic()
            records.append(record)

    def _watch(self) -> None:
        # On the worker's loop: hand over what has waited a window, look again after the next.
        with self.lock:
            if self.closed:
                return
            stale = self.records and time.monotonic() - self.first >= FLUSH_SECONDS
        if stale:
            self.flush()
        self.box.worker.loop.call_later(FLUSH_SECONDS, self._watch)

    def flush(self) -> None:
        # Handed over under the lock: the loop's flush and the chunk thread's (at its end, or
        # before each item of a careful chunk) must reach the outbox in the order they were
        # put, or an item's COMPLETED could overtake its RUNNING. (The outbox never takes this
        # lock, so holding both cannot deadlock.)
        with self.lock:
            records, self.records = self.records, []
            if records:
                self.box.put_many(self.topic, compact_wire(records))

    def close(self) -> None:
        """The chunk ended: hand over the rest; the loop stops looking."""
        with self.lock:
            self.closed = True
        self.flush()


_outboxes: dict[int, Outbox] = {}
_outboxes_lock = threading.Lock()


def outbox_for(worker: Any) -> Outbox:
    """The worker's outbox (several in-process workers each have their own)."""
    box = _outboxes.get(id(worker))
    if box is None or box.worker is not worker:
        with _outboxes_lock:
            box = _outboxes.get(id(worker))
            if box is None or box.worker is not worker:
                box = _outboxes[id(worker)] = Outbox(worker)
    return box
