"""Cancel requests from other processes, seen by the driver that runs the run.

`dagflow runs cancel RUN` writes a request into the run history (`flow_runs.cancel_requested`);
the engine never reads the store, so the driver process runs ONE watcher thread here for all of
its active runs (not one per run, never one per task). About once a second it asks the store,
in one indexed query per database, which of its runs someone asked to cancel, and calls each
such run's `cancel(reason)`: the runner cancels the run's Dask work and ends it CANCELLED. The
thread starts with the first run watched and ends when none is left.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from dagflow.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
REASON = "cancel requested (dagflow runs cancel)"


class Cancellable(Protocol):
    """What the watcher needs of a run's driver (`engine.runner.FlowRunner` is one)."""

    run_id: str

    def cancel(self, reason: str) -> None: ...


class CancelWatch:
    """One thread that relays cancel requests to this process's active runs."""

    def __init__(self, poll_seconds: float = POLL_SECONDS) -> None:
        self.poll_seconds = poll_seconds
        self._lock = threading.Lock()
        self._runs: dict[str, tuple[Store, Cancellable]] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def watch(self, store: Store, runner: Cancellable) -> None:
        with self._lock:
            self._runs[runner.run_id] = (store, runner)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="dagflow-cancel-watch", daemon=True
                )
                self._thread.start()

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)

    def _loop(self) -> None:
        while True:
            self._wake.wait(self.poll_seconds)
            with self._lock:
                if not self._runs:
                    self._thread = None
                    return
                by_store: dict[int, tuple[Store, list[str]]] = {}
                for run_id, (store, _) in self._runs.items():
                    by_store.setdefault(id(store), (store, []))[1].append(run_id)
            for store, run_ids in by_store.values():
                try:
                    requested = store.cancel_requests(run_ids)
                except Exception as exc:  # the database may be busy or away; ask again later
                    log.debug("cancel watch: cannot read cancel requests: %s", exc)
                    continue
                for run_id in requested:
                    with self._lock:
                        entry = self._runs.pop(run_id, None)
                    if entry is not None:
                        log.info("run %s: %s", run_id, REASON)
                        entry[1].cancel(REASON)


watcher = CancelWatch()
