"""What a finished run leaves on the Dask scheduler, trimmed so a long-lived cluster stays flat.

distributed keeps every span forever, and with each span the task groups and the source code it
saw, so a scheduler serving `dagflow serve` for weeks would hold every run's task groups. When a
run ends, `trim_on_scheduler` empties the run's own spans of those (one message per run, never
per task). The spans themselves stay: workers report metrics per span id in their heartbeats,
and a span the scheduler no longer knows breaks them; an empty span is a few hundred bytes.

This reaches into `distributed.spans.Span` (`groups`, and `_code` for the source snippets);
anything not found as expected is left alone, so a change in distributed costs memory, never a
run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)


def trim_on_scheduler(client: Any, span_ids: Sequence[str]) -> None:
    """Empty a finished run's spans on the scheduler (best effort, never raises)."""
    if client.status != "running":
        return
    try:
        client.run_on_scheduler(trim_spans, list(span_ids))
    except Exception:
        log.debug("could not trim spans %s on the scheduler", span_ids, exc_info=True)


def trim_spans(span_ids: list[str], dask_scheduler: Any = None) -> int:
    """On the scheduler: drop what the spans `span_ids` hold; returns how many were trimmed."""
    ext = dask_scheduler.extensions.get("spans") if dask_scheduler is not None else None
    if ext is None:
        return 0
    trimmed = 0
    for span_id in span_ids:
        span = ext.spans.get(span_id)
        if span is None:
            continue
        groups = getattr(span, "groups", None)
        if isinstance(groups, set):
            groups.clear()
        code = getattr(span, "_code", None)
        if isinstance(code, dict):
            code.clear()
        trimmed += 1
    return trimmed
