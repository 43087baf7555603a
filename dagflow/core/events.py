"""`Event`: what a trigger saw (a file, a row, a run ending, an HTTP call, a manual request).

An event is a frozen value: an `id`, a `kind`, a `source` (the directory, table, flow or webhook
it came from), a `payload` (JSON-ready fields: `path`, `size`, `row`, `run_id`, ...) and a
`time`. Its id is derived from its *identity*: `event_id(deployment, trigger, identity)` hashes
the deployment, the trigger's name and what makes the event itself (a file's path, size and
mtime; a row's watermark; an upstream run's id; a webhook delivery). So every process that sees
the same file computes the same id, and the store, which keeps ids under a primary key, records
it once and starts its run once (`run_key`: the run's idempotency key is the event's id).

Nothing here reads a clock or makes random ids: times and identities are passed in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

KINDS = ("files", "rows", "flow_run", "webhook", "manual")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a trigger saw; see the module docstring."""

    id: str
    kind: str
    source: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    time: float = 0.0

    def context(self) -> dict[str, Any]:
        """The fields a parameter template reads as `event.<field>`: the payload's, then the
        event's own (`id`, `kind`, `source`, `time`)."""
        return {**self.payload, "id": self.id, "kind": self.kind, "source": self.source,
                "time": self.time}  # fmt: skip


def event_id(deployment: str, trigger: str, identity: str) -> str:
    """The id of the event `identity` of `trigger` on `deployment` (32 hex characters)."""
    text = f"{deployment}\x00{trigger}\x00{identity}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def run_key(events: list[Event] | tuple[Event, ...]) -> str:
    """The idempotency key of the run `events` start (one event, or a gathered window of them)."""
    if len(events) == 1:
        return f"event:{events[0].id}"
    digest = hashlib.sha256("\x00".join(sorted(e.id for e in events)).encode()).hexdigest()
    return f"events:{digest[:40]}"


def template_context(events: list[Event] | tuple[Event, ...]) -> dict[str, Any]:
    """What parameter templates see: `event` (the event; for a gathered window the first one
    plus `count` and `paths` or `rows` over all) and `events` (all of them, as dicts)."""
    contexts = [e.context() for e in events]
    event = dict(contexts[0]) if contexts else {}
    if len(contexts) > 1 or (contexts and "row" in contexts[0]):
        event["count"] = len(contexts)
        if "path" in event:
            event["paths"] = [c.get("path") for c in contexts]
        if "row" in event:
            event["rows"] = [c.get("row") for c in contexts]
    return {"event": event, "events": contexts}
