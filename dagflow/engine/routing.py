"""What reaches a driver from the cluster, routed to the runs it concerns.

Workers send a client's reports on ONE Dask topic per client (`dagflow-<client id>`), not one per
run: the scheduler keeps a bounded number of events per topic, so a driver that runs for weeks
(`dagflow serve`) leaves no topic behind per run. A report names its task's Dask key, whose run
token (`run_id[:8]` + flow attempt) says which run it is for; the `Router` of the client hands it
to the `RunTracker` that registered that token.

The router also listens to the scheduler's own `all` topic for `remove-worker` events: the tasks
a lost worker was running (`processing-tasks`) and the results lost with it that Dask computes
again (`lost-computed-tasks`) are handed to their runs, so every lost attempt and every
recomputation is recorded, even when the worker died before it could say anything.

Handlers run on the client's event loop: they only sort and enqueue; the trackers do the rest.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from dagflow.core.keys import key_text

log = logging.getLogger(__name__)
_TAGGED = ("log", "ok")  # records whose task key name comes second (`core/machine.py`)


class Listener(Protocol):
    """What the router hands things to (a `RunTracker`)."""

    def on_reports(self, records: list[Any]) -> None: ...

    def on_worker_lost(
        self,
        worker: str,
        processing: list[str],
        recomputed: list[str],
        chunked: list[str] | None = None,
    ) -> None: ...


class Router:
    """One per client: the topic its runs' reports come on, and who gets what."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.topic = f"dagflow-{client.id}"
        self._lock = threading.Lock()
        self._by_token: dict[str, Listener] = {}
        client.subscribe_topic(self.topic, self._reports)
        client.subscribe_topic("all", self._scheduler_event)

    def register(self, token: str, listener: Listener) -> None:
        """Reports for keys carrying `token` go to `listener` from now on."""
        with self._lock:
            self._by_token[token] = listener

    def unregister(self, token: str) -> None:
        with self._lock:
            self._by_token.pop(token, None)

    def _listener(self, name: str) -> Listener | None:
        return self._by_token.get(name.rpartition("-")[2])

    def _reports(self, event: tuple[float, Any]) -> None:
        per_listener: dict[int, tuple[Listener, list[Any]]] = {}
        for record in event[1]:
            name = record[1] if record[0] in _TAGGED else record[0]
            listener = self._listener(name)
            if listener is None:
                continue  # a run that ended (a late report), or not this driver's
            entry = per_listener.get(id(listener))
            if entry is None:
                entry = per_listener[id(listener)] = (listener, [])
            entry[1].append(record)
        for listener, records in per_listener.values():
            listener.on_reports(records)

    def _scheduler_event(self, event: tuple[float, Any]) -> None:
        msg = event[1]
        if not isinstance(msg, dict) or msg.get("action") != "remove-worker":
            return
        worker = str(msg.get("worker", "?"))
        processing: defaultdict[int, list[str]] = defaultdict(list)
        recomputed: defaultdict[int, list[str]] = defaultdict(list)
        chunked: defaultdict[int, list[str]] = defaultdict(list)
        listeners: dict[int, Listener] = {}
        for field, into in (("processing-tasks", processing), ("lost-computed-tasks", recomputed)):
            for key in msg.get(field) or ():
                if not isinstance(key, (tuple, list)) or len(key) not in (2, 3):
                    continue
                listener = self._listener(str(key[0]))
                if listener is None:
                    continue
                listeners[id(listener)] = listener
                if len(key) == 2:
                    into[id(listener)].append(key_text((str(key[0]), int(key[1]))))
                    continue
                # a chunk `(name, a, b)`: its items (see engine/chunks.py)
                items = [key_text((str(key[0]), i)) for i in range(int(key[1]), int(key[2]))]
                (chunked if into is processing else into)[id(listener)].extend(items)
        for ident, listener in listeners.items():
            listener.on_worker_lost(
                worker, processing[ident], recomputed[ident], chunked[ident] or None
            )


_routers: WeakKeyDictionary[Any, Router] = WeakKeyDictionary()
_routers_lock = threading.Lock()


def router_for(client: Any) -> Router:
    """The client's router, subscribed on first use (one per client for its lifetime)."""
    with _routers_lock:
        router = _routers.get(client)
        if router is None:
            router = _routers[client] = Router(client)
        return router
