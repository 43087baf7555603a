"""`Watcher`: one trigger of one served deployment, watched in a thread of its own.

`dagflow serve` starts one watcher per trigger (`service.watcher_for`): files (`files.py`),
rows (`rows.py`) and flow runs (`flowruns.py`); webhooks arrive through the server, not here. A
watcher's `step()` looks once (a scan, a query) and fires what it found through the store
(`Store.fire`: each event recorded once, each starting its run once), then says how long to wait
before looking again; `poke()` (a file event, `stop()`) cuts the wait short. After firing it
wakes the serve loop, which claims the new runs at once.

A watcher never takes the service down: an error in a step (an unreachable database, a bad
query, a template naming a missing field) is one line naming the deployment and the trigger,
and the next step comes after a backoff (1 s doubling to 60 s); the other triggers and the
schedules keep working. A paused deployment's watcher keeps looking but fires nothing (what it
found fires on resume); a removed deployment's watcher stops.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event, template_context
from dagflow.core.triggers import Trigger
from dagflow.scheduler import templates

if TYPE_CHECKING:
    from dagflow.store import Fired, Store

log = logging.getLogger("dagflow.scheduler")
MAX_BACKOFF = 60.0


class Watcher:
    """Base of the watchers: the thread, the backoff, the firing; see the module docstring."""

    def __init__(
        self,
        store: Store,
        deployment: str,
        trigger: Trigger,
        current: Callable[[], Deployment | None],
        wake: Callable[[], None],
    ) -> None:
        self.store = store
        self.deployment = deployment
        self.trigger = trigger
        self.current = current
        self.wake = wake
        self._poke = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.errors = 0

    @property
    def label(self) -> str:
        return f"deployment {self.deployment}: trigger {self.trigger.name}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"trigger {self.trigger.name}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopped = True
        self._poke.set()
        self.close()
        if self._thread is not None:
            self._thread.join(timeout)

    def poke(self) -> None:
        self._poke.set()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def _loop(self) -> None:
        while not self._stopped:
            try:
                if self.current() is None:
                    return  # the deployment was removed
                delay = self.step()
                self.errors = 0
            except Exception as exc:
                self.errors += 1
                delay = min(MAX_BACKOFF, 2.0 ** (self.errors - 1))
                if self.errors in (1, 2) or self.errors % 20 == 0:
                    log.warning("%s: %s (retrying in %.0fs)", self.label, _one_line(exc), delay)
            if self._stopped:
                return
            self._poke.wait(max(0.0, delay))
            self._poke.clear()

    # ------------------------------------------------------------------ for the kinds

    def step(self) -> float:
        """Look once, fire what is new; seconds until the next look."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the watcher holds (a connection, an OS watch)."""

    def paused(self) -> bool:
        dep = self.current()
        return dep is None or dep.paused

    def fire(self, groups: Sequence[Sequence[Event]], position: Any = None) -> list[Fired]:
        """Record `groups` of events, one run per group of new ones; wake the serve loop."""
        dep = self.current()
        if dep is None:
            return []
        params = dict(dep.parameters)

        def render(events: list[Event]) -> dict[str, Any]:
            return templates.render(params, template_context(events))

        fired = self.store.fire(dep, self.trigger.name, groups, render, position=position)
        started = sum(1 for f in fired if f.run_id)
        if started:
            self.wake()
        for f in fired:
            if f.error:
                log.warning("%s: event %s started no run: %s", self.label, f.events[0].id[:12],
                            f.error)  # fmt: skip
        if fired:
            log.info("%s: %d new event(s), %d run(s) created", self.label,
                     sum(len(f.events) for f in fired), started)  # fmt: skip
        return fired


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
