"""The run history: SQLAlchemy persistence of flows, runs, task runs, state history and logs.

```
open_store(url)  ->  Store  ── database.py   engine, version check, Alembic upgrade
                           ├── writer.py     StoreWriter: the batched EventSink (background thread)
                           ├── reader.py     FlowRun values back, run ids by prefix
                           ├── browse.py     pages of runs, task runs, history, logs; the timeline
                           ├── control.py    cancel and resume requested from outside a run's driver
                           ├── crashes.py    stale heartbeat -> CRASHED, recorded on read
                           ├── resume.py     what resume needs: the run reopened, task outcomes
                           │   scheduling.py: the Store's methods for the three below
                           ├── deployments.py  deployments registered, read, paused, removed
                           ├── ticks.py      scheduled runs: created, claimed, taken, cancelled once
                           ├── events.py     triggers' events: recorded once, one run each
                           │   configuring.py: the Store's methods for the four below
                           ├── variables.py  named JSON values; a run's `RunConfig` is read here
                           ├── limits.py     concurrency limits by tag
                           ├── pauses.py     pauses for approval: opened, answered, settled
                           └── secrets.py    Fernet-encrypted values (keys: secretkey.py)
```

The database is `DAGFLOW_DATABASE_URL`, else SQLite at `DAGFLOW_HOME/dagflow.db` (`settings.py`).
Only the driver opens it (a worker never imports this package). Rows never leave: every method
returns `dagflow.core` values or small frozen records. Times are floats, seconds since the epoch
(UTC), throughout. No click, rich or HTTP here: the CLI and the server call these methods.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dagflow.core.history import Attempt, FlowSummary, HistoryStep, RunSummary, Setback, TaskGroup
from dagflow.core.runs import FlowRun, LogEvent
from dagflow.core.states import StateType
from dagflow.errors import StoreError
from dagflow.settings import Settings
from dagflow.store import control, database, resume
from dagflow.store.browse import (
    Browser,
    Cursor,
    RunFilter,
    RunPage,
    TaskRunPage,
)
from dagflow.store.configuring import ConfigMethods
from dagflow.store.database import SchemaStatus, driver_reason
from dagflow.store.deployments import DeploymentInfo
from dagflow.store.events import EventRecord, Fired, TriggerPosition
from dagflow.store.limits import ConcurrencyLimit
from dagflow.store.reader import Reader, parse_state
from dagflow.store.resume import ReopenedRun, TaskOutcome
from dagflow.store.scheduling import SchedulingMethods
from dagflow.store.schema import flow_runs, flows, logs, task_runs
from dagflow.store.secretkey import Keyring
from dagflow.store.secrets import SecretInfo
from dagflow.store.settings import StoreSettings, display_url, load_settings
from dagflow.store.ticks import Claimed, NewRun
from dagflow.store.variables import Variable
from dagflow.store.writer import StoreWriter

__all__ = [
    "Claimed",
    "ConcurrencyLimit",
    "DatabaseInfo",
    "DeploymentInfo",
    "EventRecord",
    "Fired",
    "FlowSummary",
    "HistoryStep",
    "NewRun",
    "ReopenedRun",
    "RunFilter",
    "RunPage",
    "SecretInfo",
    "Setback",
    "Store",
    "StoreWriter",
    "TaskOutcome",
    "TaskRunPage",
    "TriggerPosition",
    "Variable",
    "open_store",
]


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    """Where a database is, its schema revision, and how many rows it holds per table."""

    url: str
    backend: str
    revision: str | None
    head: str
    counts: dict[str, int]


class Store(SchedulingMethods, ConfigMethods):
    """One run history database: its engine, a reader, and (on demand) a writer.

    Its scheduling methods are in `scheduling.py`, its configuration methods in `configuring.py`.

    It implements `dagflow.core.history.RunHistory`, as the server's HTTP client does.
    """

    def __init__(self, settings: StoreSettings, *, upgrade: bool = True) -> None:
        self.settings = settings
        self.url = settings.url
        self.engine = database.make_engine(settings.url)
        self.status: SchemaStatus = (
            database.upgrade(self.engine) if upgrade else database.check_schema(self.engine)
        )
        self.reader = Reader(self.engine, settings.crash_after_seconds, settings.late_after_seconds)
        self.browser = Browser(self.reader)
        self._writer: StoreWriter | None = None
        self._lock = threading.Lock()
        self.keys = Keyring(settings)

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

    # ------------------------------------------------------------------ reading runs

    def get_flow_run(self, ref: str, *, task_history: bool = True) -> FlowRun:
        return self.reader.get_flow_run(ref, task_history=task_history)

    def list_flow_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[FlowRun]:
        return self.reader.list_flow_runs(flow, state, limit)

    def list_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """The newest runs first, with their task runs counted by state (not loaded)."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        states = (parse_state(state),) if state is not None else ()
        return self.browser.list_runs(RunFilter(flow, states), None, limit).runs

    def runs_page(self, where: RunFilter, cursor: Cursor | None = None, limit: int = 50) -> RunPage:
        """One page of runs, newest first, and the cursor of the next page."""
        return self.browser.list_runs(where, cursor, limit)

    def run_summary(self, ref: str) -> RunSummary:
        """One run with its flow-level history and task counts, without loading task runs."""
        return self.browser.run_summary(ref)

    def run_summaries(self, run_ids: list[str]) -> dict[str, RunSummary]:
        """The recorded runs among `run_ids`, by id, with their task counts."""
        return self.browser.run_summaries(run_ids)

    def list_flows(self) -> list[FlowSummary]:
        return self.browser.list_flows()

    def task_run_page(
        self,
        run_id: str,
        states: tuple[StateType, ...] = (),
        name: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> TaskRunPage:
        return self.browser.task_run_page(run_id, states, name, offset, limit)

    def history_page(
        self, run_id: str, task_key: str | None = None, after: int = 0, limit: int = 500
    ) -> list[HistoryStep]:
        return self.browser.history_page(run_id, task_key, after, limit)

    def log_page(
        self,
        run_id: str,
        *,
        min_level: int = 0,
        search: str | None = None,
        task: str | None = None,
        after: int = 0,
        limit: int = 500,
    ) -> list[tuple[int, LogEvent]]:
        return self.browser.log_page(
            run_id, min_level=min_level, search=search, task=task, after=after, limit=limit
        )

    def task_groups(self, run_id: str) -> list[TaskGroup]:
        return self.browser.task_groups(run_id)

    def task_edges(self, run_id: str) -> list[tuple[str, str]]:
        return self.browser.task_edges(run_id)

    def attempts(self, run_id: str, names: list[str]) -> list[Attempt]:
        return self.browser.attempts(run_id, names)

    def resolve(self, ref: str) -> str:
        """The full id of the run named by `ref` (an id or a unique prefix of one)."""
        return self.reader.resolve(ref)

    def run_state(self, run_id: str) -> StateType | None:
        """A run's current state (crash detection applied), or None if there is no such run."""
        self.reader.detect_crashes([run_id])
        with self.reader.connect() as conn:
            state = conn.scalar(select(flow_runs.c.state).where(flow_runs.c.id == run_id))
        return StateType(state) if state is not None else None

    def logs(self, ref: str, task: str | None = None) -> list[LogEvent]:
        run_id = self.reader.resolve(ref)
        return [ev for _, ev in self.reader.logs(run_id, task)]

    def logs_after(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, LogEvent]]:
        """Log records after the one with row id `after`, as (row id, record): for following."""
        return self.reader.logs(run_id, task, after)

    # ------------------------------------------------------------------ requests

    def request_cancel(
        self, ref: str, reason: str = "cancel requested (dagflow runs cancel)"
    ) -> tuple[str, StateType]:
        """Cancel run `ref` (see `control.py`): a SCHEDULED run now, an active one through its
        driver. Returns its id and its state after: CANCELLED, or CANCELLING."""
        run_id = self.reader.resolve(ref)
        self.reader.detect_crashes([run_id])
        return run_id, control.request_cancel(self.engine, run_id, reason)

    def request_resume(self, ref: str) -> tuple[str, StateType, float]:
        """Queue run `ref` (a deployment's run that ended FAILED, TIMED_OUT, CRASHED or
        CANCELLED) for a serving process to resume (see `control.py`). Returns its id, its state
        and when the resume was asked; `StateConflict` if it cannot be resumed that way."""
        reopened = resume.reopen_run(self.reader, ref)  # resumable, parameters intact
        asked = control.request_resume(self.engine, reopened.run_id, reopened.state, time.time())
        return reopened.run_id, reopened.state, asked

    def resume_requested(self, run_id: str) -> float | None:
        """When a resume of `run_id` was asked and not yet claimed by a serving process."""
        with self.reader.connect() as conn:
            asked = conn.scalar(
                select(flow_runs.c.resume_requested).where(flow_runs.c.id == run_id)
            )
        return float(asked) if asked is not None else None

    # ------------------------------------------------------------------ what a run went through

    def setbacks(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, Setback]]:
        """Task retries and failures after history row `after`, as (row id, setback)."""
        return self.reader.setbacks(run_id, task, after)

    def task_names(self, run_id: str) -> list[str]:
        return self.reader.task_names(run_id)

    def has_task(self, run_id: str, ref: str) -> bool:
        """Does run `run_id` have a task run with this name or key?"""
        return self.reader.has_task(run_id, ref)

    # ------------------------------------------------------------------ resuming

    def reopen_run(self, ref: str) -> ReopenedRun:
        return resume.reopen_run(self.reader, ref)

    def load_task_outcomes(self, run_id: str) -> dict[str, TaskOutcome]:
        return resume.load_task_outcomes(self.reader, run_id)

    # ------------------------------------------------------------------ the database

    def ping(self) -> None:
        """One round trip to the database; `StoreError` if it does not answer."""
        with self.reader.connect() as conn:
            conn.execute(select(1))

    def info(self) -> DatabaseInfo:
        """The database's location, revision and row counts (counts are 0 before creation)."""
        counts = dict.fromkeys(("flows", "flow_runs", "task_runs", "logs"), 0)
        if self.status.current is not None:
            with self.reader.connect() as conn:
                for table in (flows, flow_runs, task_runs, logs):
                    counts[table.name] = conn.scalar(select(func.count()).select_from(table)) or 0
        return DatabaseInfo(
            display_url(self.url),
            self.url.get_backend_name(),
            self.status.current,
            self.status.head,
            counts,
        )

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit what the writer holds (up to `timeout`), then release connections."""
        if self._writer is not None:
            self._writer.close(timeout)
        self.engine.dispose()


def open_store(
    url: str | URL | None = None, *, upgrade: bool = True, settings: Settings | None = None
) -> Store:
    """Open (and, unless `upgrade=False`, create or upgrade) a run history database."""
    store_settings = load_settings(url, settings)
    try:
        return Store(store_settings, upgrade=upgrade)
    except DBAPIError as exc:
        raise StoreError(
            f"cannot open the dagflow database {display_url(store_settings.url)}: "
            f"{driver_reason(exc)}"
        ) from None
