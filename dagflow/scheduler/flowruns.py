"""`FlowRunWatcher`: a run of an upstream flow or deployment ending starts this deployment.

Every second it reads the top-level runs that ended since its position (the last end time it
handled, stored with the events it fired) in the trigger's states, oldest first, in pages of
500. Each matching run is an event whose identity is the upstream run's id, so a run ending
starts its downstream run once whatever restarts or second servers happen. A watcher starting
for the first time begins at the present: runs that ended before it was first served do not
fire. The position is read back a few seconds early (runs recorded late with an earlier end
time are still seen); what was fired already is skipped by its event id.

The event's payload: `run_id`, `flow`, `deployment`, `state`, `parameters` and, when the
upstream run persisted its result, `result_location` and `result` (the value, when it is
JSON-ready and under `MAX_RESULT` bytes as JSON; a bigger one is read by the downstream flow
from its location).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event, event_id
from dagflow.core.triggers import FlowRunTrigger
from dagflow.scheduler.watchers import Watcher

if TYPE_CHECKING:
    from dagflow.store import Store

OVERLAP = 5.0  # seconds read again before the position
PAGE = 500
MAX_RESULT = 64 * 1024  # bytes of JSON: larger results stay at their location
_MISSING = object()


class FlowRunWatcher(Watcher):
    """Watches one flow-run trigger; see the module docstring."""

    trigger: FlowRunTrigger

    def __init__(
        self,
        store: Store,
        deployment: str,
        trigger: FlowRunTrigger,
        current: Callable[[], Deployment | None],
        wake: Callable[[], None],
        every: float = 1.0,
    ) -> None:
        super().__init__(store, deployment, trigger, current, wake)
        self.every = every
        self.position: float | None = None
        self.handled: set[str] = set()  # upstream runs handled at or after position - OVERLAP

    def step(self) -> float:
        if self.position is None:
            stored = self.store.trigger_positions([self.deployment]).get(
                (self.deployment, self.trigger.name)
            )
            if stored is not None and isinstance(stored.position, int | float):
                self.position = float(stored.position)
            else:
                self.position = time.time()
                self.store.fire(
                    self._dep(), self.trigger.name, [], _nothing, position=self.position
                )
        if self.paused():
            return self.every
        ended = self.store.ended_runs(self.position - OVERLAP, self.trigger.states, PAGE)
        events: list[Event] = []
        newest = self.position
        for run_id, flow, deployment, state, end, params, result, serializer in ended:
            newest = max(newest, end)
            if run_id in self.handled or not self.trigger.matches(flow, deployment):
                continue
            payload = {
                "run_id": run_id,
                "flow": flow,
                "deployment": deployment,
                "state": state,
                "parameters": json.loads(params or "{}"),
                "ended": end,
            }
            if result:
                payload["result_location"] = result
                value = _small_result(result, serializer or "cloudpickle")
                if value is not _MISSING:
                    payload["result"] = value
            eid = event_id(self.deployment, self.trigger.name, run_id)
            events.append(Event(eid, "flow_run", deployment or flow, payload, end))
        if events or newest > self.position:
            self.fire([[e] for e in events], position=newest)
            self.handled |= {str(e.payload["run_id"]) for e in events}
            self.position = newest
            self.handled = {r for r in self.handled if r in {row[0] for row in ended}}
        return 0.0 if len(ended) == PAGE else self.every

    def _dep(self) -> Deployment:
        dep = self.current()
        assert dep is not None
        return dep


def _nothing(events: list[Event]) -> dict[str, object]:
    return {}


def _small_result(location: str, serializer: str) -> object:
    """The persisted result at `location` if small and JSON-ready, else `_MISSING`."""
    from pydantic_core import to_json, to_jsonable_python

    from dagflow import settings
    from dagflow.engine.results import ResultStorage

    try:
        value = ResultStorage(settings.load().results_url).read_location(location, serializer)
        ready = to_jsonable_python(value)
        if len(to_json(ready)) > MAX_RESULT:
            return _MISSING
        return ready
    except Exception:  # unreadable, or not JSON-ready: the location is in the payload
        return _MISSING
