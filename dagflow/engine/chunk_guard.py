"""Isolating a poison item: the item of a chunk that kills every worker it runs on.

Dask counts worker deaths per task: after `allowed-failures` + 1 deaths while a task ran, the
task errs with `KilledWorker`. A chunk is one Dask task for many items, so one poison item would
take its neighbours down with it. `ChunkGuard`, a scheduler plugin, counts deaths per item
instead:

1. A chunk first runs plainly (no cost per item). If its worker dies, the guard annotates the
   chunk `careful` and gives Dask's count back, so the chunk runs again.
2. A careful chunk tells the scheduler which item it is about to run (`mark`: one round trip per
   item, only after a death). When its worker dies, the guard counts the death against that item.
3. An item whose deaths exceed `allowed-failures` is listed in the chunk's annotations; the next
   run of the chunk does not run it but ends it FAILED with `KilledWorker` (`chunks.run_chunk`),
   and its neighbours complete.

Deaths no item is known for still count towards Dask's own limit (less the first), so a chunk
that dies before its first item still ends in `KilledWorker`. The guard looks only at dagflow's
chunks (keys `(name, start, stop)` of layers annotated `dagflow_run`) and keeps nothing once a
chunk is done.

The plugin travels to the scheduler by value (it uses nothing of dagflow but two names), so a
scheduler without dagflow installed takes it too; where it cannot be installed, chunks behave as
before: a poison item fails its whole chunk.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from weakref import WeakKeyDictionary

from distributed.diagnostics.plugin import SchedulerPlugin

from dagflow.engine.chunks import GUARD_ANNOTATION as ANNOTATION
from dagflow.engine.chunks import GUARD_MARK as MARK

log = logging.getLogger(__name__)

NAME = "dagflow-chunk-guard"


class ChunkGuard(SchedulerPlugin):
    """On the scheduler: worker deaths counted per item of a chunk, and poison items named."""

    name = NAME
    idempotent = True

    def __init__(self) -> None:
        self.scheduler: Any = None
        # chunk key -> the item running (its stage in a fused chunk, its index), and where
        self.at: dict[Any, tuple[int, int, str]] = {}
        # chunk key -> (stage, item) -> [deaths, last worker]
        self.deaths: dict[Any, dict[tuple[int, int], list[Any]]] = {}
        self.unknown: dict[Any, int] = {}  # chunk key -> deaths no item was known for
        self.left: dict[Any, int] = {}  # chunk key -> the `suspicious` count the guard left

    async def start(self, scheduler: Any) -> None:
        self.scheduler = scheduler
        scheduler.handlers[MARK] = self.mark

    def mark(self, key: Any = None, item: int = 0, worker: str = "", stage: int = 0) -> None:
        """A careful chunk is about to run `item` (of stage `stage`, in a fused one) on `worker`."""
        self.at[tuple(key) if isinstance(key, list) else key] = (stage, item, worker)

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if type(key) is not tuple or len(key) != 3:
            return
        if finish in ("memory", "erred", "forgotten"):
            for table in (self.at, self.deaths, self.unknown, self.left):
                table.pop(key, None)
            return
        if start != "processing" or finish != "released":
            return
        ts = self.scheduler.tasks.get(key)
        if ts is None or not ts.annotations or "dagflow_run" not in ts.annotations:
            return
        if ts.suspicious <= self.left.get(key, 0):
            return  # released for another reason than a worker's death (cancelled, stolen)
        self._died(key, ts)

    def _died(self, key: Any, ts: Any) -> None:
        running = self.at.pop(key, None)
        if running is None:
            unknown = self.unknown[key] = self.unknown.get(key, 0) + 1
        else:
            stage, item, worker = running
            entry = self.deaths.setdefault(key, {}).setdefault((stage, item), [0, worker])
            entry[0] += 1
            entry[1] = worker
            unknown = self.unknown.get(key, 0)
        allowed = self.scheduler.allowed_failures
        poison = [
            [stage, i, n, w]
            for (stage, i), (n, w) in self.deaths.get(key, {}).items()
            if n > allowed
        ]
        ts.suspicious = max(0, unknown - 1)
        self.left[key] = ts.suspicious
        ts.annotations = {**ts.annotations, ANNOTATION: {"poison": poison}}


_installed: WeakKeyDictionary[Any, bool] = WeakKeyDictionary()
_lock = threading.Lock()


def install(client: Any) -> None:
    """Install the guard on the client's scheduler, once per client (best effort)."""
    with _lock:
        if _installed.get(client):
            return
        _installed[client] = True
    import sys

    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        client.register_plugin(ChunkGuard(), name=NAME)
    except Exception:
        log.warning(
            "could not install dagflow's chunk guard on the scheduler: a poison item fails "
            "the other items of its chunk",
            exc_info=True,
        )
