"""The run history: SQLAlchemy persistence of flows, runs, task runs, state history and logs.

```
open_store(url)  ->  Store  ── database.py   engine, version check, Alembic upgrade
                           ├── writer.py     StoreWriter: the batched EventSink (background thread)
                           ├── reader.py     FlowRun values back, run ids by prefix
                           ├── crashes.py    stale heartbeat -> CRASHED, recorded on read
                           └── resume.py     what resume and caching need from the engine's side
```

The default database is `DAGFLOW_DATABASE_URL`, else SQLite at `DAGFLOW_HOME/dagflow.db`
(`settings.py`). `default_sink()` is the process-wide writer for it, created on first use and
flushed at interpreter exit. Times are floats, seconds since the epoch (UTC), throughout.
"""

from __future__ import annotations

import atexit
import threading

from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dagflow.core.runs import FlowRun, LogEvent
from dagflow.core.states import StateType
from dagflow.errors import StoreError
from dagflow.store import database, resume
from dagflow.store.database import SchemaStatus, driver_reason
from dagflow.store.reader import Reader
from dagflow.store.resume import CachedResult, ReopenedRun, TaskOutcome
from dagflow.store.settings import StoreSettings, display_url, load_settings
from dagflow.store.writer import StoreWriter

__all__ = [
    "CachedResult",
    "ReopenedRun",
    "Store",
    "StoreWriter",
    "TaskOutcome",
    "default_sink",
    "default_store",
    "get_flow_run",
    "list_flow_runs",
    "open_store",
]


class Store:
    """One run history database: its engine, a reader, and (on demand) a writer."""

    def __init__(self, settings: StoreSettings, *, upgrade: bool = True) -> None:
        self.settings = settings
        self.url = settings.url
        self.engine = database.make_engine(settings.url)
        self.status: SchemaStatus = (
            database.upgrade(self.engine) if upgrade else database.check_schema(self.engine)
        )
        self.reader = Reader(self.engine, settings.crash_after_seconds)
        self._writer: StoreWriter | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Store({display_url(self.url)!r})"

    @property
    def writer(self) -> StoreWriter:
        """This database's batched writer (an `EventSink`), started on first use."""
        with self._lock:
            if self._writer is None:
                self._writer = StoreWriter(
                    self.url, heartbeat_seconds=self.settings.heartbeat_seconds
                )
            return self._writer

    def get_flow_run(self, ref: str) -> FlowRun:
        return self.reader.get_flow_run(ref)

    def list_flow_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[FlowRun]:
        return self.reader.list_flow_runs(flow, state, limit)

    def logs(self, ref: str, task: str | None = None) -> list[LogEvent]:
        run_id = self.reader.resolve(ref)
        return [ev for _, ev in self.reader.logs(run_id, task)]

    def resolve(self, ref: str) -> str:
        return self.reader.resolve(ref)

    def reopen_run(self, ref: str) -> ReopenedRun:
        return resume.reopen_run(self.reader, ref)

    def load_task_outcomes(self, run_id: str) -> dict[str, TaskOutcome]:
        return resume.load_task_outcomes(self.reader, run_id)

    def find_cached(self, cache_key: str, not_before: float | None = None) -> CachedResult | None:
        return resume.find_cached(self.reader, cache_key, not_before)

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit what the writer holds (up to `timeout`), then release connections."""
        if self._writer is not None:
            self._writer.close(timeout)
        self.engine.dispose()


def open_store(url: str | URL | None = None, *, upgrade: bool = True) -> Store:
    """Open (and, unless `upgrade=False`, create or upgrade) a run history database."""
    settings = load_settings(url)
    try:
        return Store(settings, upgrade=upgrade)
    except DBAPIError as exc:
        raise StoreError(
            f"cannot open the dagflow database {display_url(settings.url)}: {driver_reason(exc)}"
        ) from None


_defaults: dict[str, Store] = {}
_defaults_lock = threading.Lock()


def default_store() -> Store:
    """The store of the default database (per URL, so a changed environment is followed)."""
    settings = load_settings()
    key = settings.url.render_as_string(hide_password=False)
    with _defaults_lock:
        store = _defaults.get(key)
        if store is None:
            store = _defaults[key] = Store(settings)
        return store


def default_sink() -> StoreWriter:
    """The process-wide writer into the default database, created on first use."""
    return default_store().writer


def get_flow_run(ref: str) -> FlowRun:
    """A recorded flow run by id or unique id prefix, with task runs and `logs()`."""
    return default_store().get_flow_run(ref)


def list_flow_runs(
    flow: str | None = None, state: StateType | str | None = None, limit: int = 50
) -> list[FlowRun]:
    """Recorded flow runs, newest first."""
    return default_store().list_flow_runs(flow, state, limit)


@atexit.register
def _close_defaults() -> None:
    with _defaults_lock:
        stores = list(_defaults.values())
        _defaults.clear()
    for store in stores:
        store.close(timeout=10.0)
