"""Where a run's events go on the driver: the `FlowRun` itself, the CLI, the store.

A sink receives events in batches, in order, from one thread per run. Sinks registered with
`add_sink` receive every run's events (the store's writer registers itself); a run may also carry
sinks of its own (the CLI's progress display). A failing sink is logged and never fails the run.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from dagflow.core.runs import RunEvent

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def handle(self, events: Sequence[RunEvent]) -> None:
        """Consume a batch of events; must be quick (queue work, don't do it here)."""

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything handled so far is durable (a no-op for most sinks)."""


_global: list[EventSink] = []
_factories: list[Callable[[], EventSink]] = []
_lock = threading.Lock()


def add_sink_factory(factory: Callable[[], EventSink]) -> None:
    """Call `factory` at the start of every run for a sink (e.g. the default store's writer).

    A factory that raises stops the run before anything runs: a store that cannot record must
    say so up front.
    """
    with _lock:
        if factory not in _factories:
            _factories.append(factory)


def add_sink(sink: EventSink) -> None:
    """Send every run's events to `sink` too."""
    with _lock:
        if sink not in _global:
            _global.append(sink)


def remove_sink(sink: EventSink) -> None:
    with _lock:
        if sink in _global:
            _global.remove(sink)


def global_sinks() -> list[EventSink]:
    with _lock:
        sinks = list(_global)
        factories = list(_factories)
    for factory in factories:
        sink = factory()
        if sink not in sinks:
            sinks.append(sink)
    return sinks


def dispatch(sinks: Sequence[EventSink], events: Sequence[RunEvent]) -> None:
    for sink in sinks:
        try:
            sink.handle(events)
        except Exception:
            log.exception("event sink %r failed", sink)
