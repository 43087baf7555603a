"""Where a run's events go on the driver: the CLI's display, the store's writer, anything else.

A sink receives events in batches, in order, from the threads of one run. The runtime decides
which sinks a run has (the store's writer, and whatever its caller adds, such as the CLI's
progress display) and hands them to the runner; nothing registers itself. A failing sink is
logged and never fails the run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from dagflow.core.runs import RunEvent

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def handle(self, events: Sequence[RunEvent]) -> None:
        """Consume a batch of events; must be quick (queue work, don't do it here)."""

    def flush(self, timeout: float | None = None) -> None:
        """Block until everything handled so far is durable (a no-op for most sinks)."""


def dispatch(sinks: Sequence[EventSink], events: Sequence[RunEvent]) -> None:
    for sink in sinks:
        try:
            sink.handle(events)
        except Exception:
            log.exception("event sink %r failed", sink)
