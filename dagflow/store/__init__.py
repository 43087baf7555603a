"""The run history: SQLAlchemy persistence of flows, runs, task runs, state history and logs.

```
open_store(url)  ->  Store  ── database.py   engine, version check, Alembic upgrade
                           ├── writer.py     StoreWriter: the batched EventSink (background thread)
                           ├── reader.py     FlowRun values back, run ids by prefix
                           ├── browse.py     pages of runs, task runs, history, logs; the timeline
                           ├── control.py    cancel and resume requested from outside a run's driver
                           ├── crashes.py    stale heartbeat -> CRASHED, recorded on read
                           ├── resume.py     what resume needs: the run reopened, task outcomes
                           ├── deployments.py  deployments registered, read, paused, removed
                           ├── ticks.py      scheduled runs: created, claimed, taken, cancelled once
                           ├── events.py     triggers' events: recorded once, one run each

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from dagflow.core.config import RunConfig, masker_for
from dagflow.core.deployments import Deployment
from dagflow.core.events import Event
from dagflow.core.history import Attempt, FlowSummary, HistoryStep, RunSummary, Setback, TaskGroup
from dagflow.core.pauses import Pause, PauseStatus
from dagflow.core.runs import FlowRun, LogEvent
from dagflow.core.states import StateType
from dagflow.errors import SecretError, StoreError
from dagflow.settings import Settings
from dagflow.store import control, database, resume, ticks
from dagflow.store import deployments as deployment_rows
from dagflow.store import events as event_rows
from dagflow.store import limits as limit_rows
from dagflow.store import pauses as pause_rows
from dagflow.store import secrets as secret_rows
from dagflow.store import variables as variable_rows
from dagflow.store.browse import (
    Browser,
    Cursor,
    RunFilter,
    RunPage,
    TaskRunPage,
)
from dagflow.store.database import SchemaStatus, driver_reason
from dagflow.store.deployments import DeploymentInfo
from dagflow.store.events import EventRecord, Fired, Render, TriggerPosition
from dagflow.store.limits import ConcurrencyLimit
from dagflow.store.reader import Reader, parse_state
from dagflow.store.resume import ReopenedRun, TaskOutcome
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


class Store:
    """One run history database: its engine, a reader, and (on demand) a writer.

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

    def get_flow_run(self, ref: str) -> FlowRun:
        return self.reader.get_flow_run(ref)

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

    # ------------------------------------------------------------------ deployments

    def save_deployments(self, items: Sequence[Deployment]) -> list[str]:
        """Register deployments (upsert by `flow/name`); returns those whose schedules changed.

        A changed deployment's future, unclaimed ticks are deleted: new ones follow.
        """
        now = time.time()
        changed = deployment_rows.save(self.engine, list(items), now)
        if changed:
            deployment_rows.unschedule(self.engine, changed, now, "schedule")
        return changed

    def deployments(self, refs: Sequence[str] | None = None) -> list[DeploymentInfo]:
        """Registered deployments (all, or those named), with their next and last runs."""
        with self.reader.connect() as conn:
            ids = None if refs is None else [deployment_rows.resolve(conn, r) for r in refs]
            return deployment_rows.infos(conn, ids)

    def deployment(self, ref: str) -> Deployment:
        """One registered deployment by `flow/name` (or a name unique across flows)."""
        return self.deployments([ref])[0].deployment

    def deployment_rows(self, ids: Sequence[str]) -> dict[str, Deployment]:
        """The registered deployments among `ids` (full names), in one query."""
        with self.reader.connect() as conn:
            return {k: dep for k, (dep, _) in deployment_rows.load(conn, list(ids)).items()}

    def set_paused(self, ref: str, paused: bool) -> str:
        """Pause (its upcoming ticks are dropped, none are created) or resume a deployment."""
        full = deployment_rows.set_paused(self.engine, ref, paused)
        if paused:
            deployment_rows.unschedule(self.engine, [full], time.time(), "schedule")
        return full

    def remove_deployment(self, ref: str) -> str:
        """Forget a deployment; its runs not started yet are dropped, the others stay."""
        full = deployment_rows.remove(self.engine, ref)
        deployment_rows.unschedule(self.engine, [full], None, None)
        return full

    # ------------------------------------------------------------------ scheduled runs

    def create_runs(self, runs: Sequence[NewRun]) -> list[str]:
        """Insert SCHEDULED runs, each once per idempotency key; returns the ids created."""
        return ticks.create_runs(self.engine, runs, time.time())

    def last_ticks(self, deployment_ids: list[str]) -> dict[str, float]:
        return ticks.last_ticks(self.engine, deployment_ids)

    def skip_missed(self, now: float) -> list[str]:
        return ticks.skip_missed(self.engine, now)

    def claim_due(
        self,
        served_by: str,
        now: float,
        capacity: int,
        reclaim_after: float = 60.0,
        deployment_ids: Sequence[str] | None = None,
    ) -> list[Claimed]:
        """Claim up to `capacity` due runs (of `deployment_ids` only, when given)."""
        return ticks.claim_due(self.engine, served_by, now, capacity, reclaim_after, deployment_ids)

    def take_run(self, run_id: str, served_by: str) -> bool:
        return ticks.take(self.engine, run_id, served_by, time.time())

    def fail_unstarted(self, run_id: str, served_by: str, message: str, error_type: str) -> bool:
        return ticks.fail_unstarted(
            self.engine, run_id, served_by, message, error_type, time.time()
        )

    def release_claims(self, served_by: str) -> int:
        return ticks.release_claims(self.engine, served_by)

    def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        return ticks.cancel_requests(self.engine, run_ids)

    def claim_resumes(
        self, served_by: str, now: float, capacity: int, deployment_ids: Sequence[str]
    ) -> list[Claimed]:
        """Claim up to `capacity` runs of `deployment_ids` queued for resuming."""
        return control.claim_resumes(self.engine, served_by, now, capacity, deployment_ids)

    def give_back_resume(self, run_id: str, served_by: str) -> bool:
        return control.give_back_resume(self.engine, run_id, served_by, time.time())

    # ------------------------------------------------------------------ events of triggers

    def fire(
        self,
        deployment: Deployment,
        trigger: str,
        groups: Sequence[Sequence[Event]],
        render: Render,
        *,
        origin: str = "trigger",
        position: Any = None,
    ) -> list[Fired]:
        """Record events and start one run per group of new ones, once (`store/events.py`)."""
        return event_rows.fire(
            self.engine, deployment, trigger, groups, render, origin=origin, position=position
        )

    def known_events(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are recorded events."""
        return event_rows.known(self.engine, ids)

    def trigger_positions(
        self, deployment_ids: Sequence[str]
    ) -> dict[tuple[str, str], TriggerPosition]:
        return event_rows.positions(self.engine, deployment_ids)

    def events(
        self, deployment: str | None = None, run_id: str | None = None, limit: int = 50
    ) -> list[EventRecord]:
        """Recorded events, newest first; of one deployment (`flow/name` or a unique name)."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        if deployment is not None:
            try:
                with self.reader.connect() as conn:
                    deployment = deployment_rows.resolve(conn, deployment)
            except StoreError:
                if "/" not in deployment:
                    raise  # a removed deployment's events are still named by FLOW/NAME

        return event_rows.list_events(self.engine, deployment, run_id, limit)

    def event(self, event_id: str) -> EventRecord | None:
        return event_rows.get_event(self.engine, event_id)

    def ended_runs(
        self, after: float, states: Sequence[str], limit: int = 500
    ) -> list[tuple[str, str, str | None, str, float, str, str | None, str | None]]:
        return event_rows.ended_runs(self.engine, after, states, limit)

    # ------------------------------------------------------------------ pauses for approval
    # (`dagflow.core.pauses.PauseBoard`: the driver's side; `answer_pause`: an approver's)

    def open_pause(
        self,
        run_id: str,
        number: int,
        reason: str,
        input_schema: dict[str, Any] | None,
        deadline: float | None,
    ) -> None:
        pause_rows.open_pause(
            self.engine, run_id, number, reason, input_schema, deadline, time.time()
        )

    def read_pause(self, run_id: str, number: int) -> Pause:
        with self.reader.connect() as conn:
            return pause_rows.read(conn, run_id, number)

    def settle_pause(self, run_id: str, number: int, status: PauseStatus, error: str = "") -> None:
        pause_rows.settle(self.engine, run_id, number, status, error, time.time())

    def answer_pause(
        self, ref: str, approve: bool, value: Any = None, by: str = "", reason: str = ""
    ) -> Pause:
        """Approve (with the input `value`) or reject the open pause of run `ref`."""
        run_id = self.reader.resolve(ref)
        self.reader.detect_crashes([run_id])
        return pause_rows.answer(self.engine, run_id, approve, value, by, reason, time.time())

    def last_pause(self, ref: str) -> Pause | None:
        """The last pause of run `ref`, if it ever paused."""
        run_id = self.reader.resolve(ref)
        with self.reader.connect() as conn:
            return pause_rows.latest(conn, run_id)

    # ------------------------------------------------------------------ configuration

    def set_variable(self, name: str, value: object) -> None:
        """Set variable `name` to the JSON value `value` (made, or replaced)."""
        variable_rows.set_value(self.engine, name, value, time.time())

    def variable(self, name: str) -> Variable:
        """One variable; `NotFound` naming it if there is none."""
        with self.reader.connect() as conn:
            return variable_rows.get(conn, name)

    def variables(self) -> list[Variable]:
        """Every variable, by name."""
        with self.reader.connect() as conn:
            return variable_rows.listed(conn)

    def remove_variable(self, name: str) -> None:
        variable_rows.remove(self.engine, name)

    def set_secret(self, name: str, value: str) -> None:
        """Encrypt and store `value` as secret `name` (the key file is made on first use)."""
        secret_rows.set_value(self.engine, self.keys, name, value, time.time())

    def secrets(self) -> list[SecretInfo]:
        """Every secret's name and times (never a value)."""
        with self.reader.connect() as conn:
            return secret_rows.listed(conn)

    def remove_secret(self, name: str) -> None:
        secret_rows.remove(self.engine, name)

    def rotate_secret_key(self) -> int:
        """Re-encrypt every secret with a new key (or `DAGFLOW_SECRET_KEY`'s first); how many."""
        return secret_rows.rotate(self.engine, self.keys)

    def set_concurrency_limit(self, tag: str, slots: int) -> None:
        """At most `slots` task runs tagged `tag` at once (for runs started from now on)."""
        limit_rows.set_limit(self.engine, tag, slots, time.time())

    def concurrency_limits(self) -> list[ConcurrencyLimit]:
        with self.reader.connect() as conn:
            return limit_rows.listed(conn)

    def remove_concurrency_limit(self, tag: str) -> None:
        limit_rows.remove(self.engine, tag)

    def run_config(self) -> RunConfig:
        """What a run starting now reads: every variable, every secret decrypted, every
        concurrency limit (three queries).

        A key that cannot decrypt the secrets does not stop the run: reading a secret in it
        raises that error, and reading none works.
        """
        with self.reader.connect() as conn:
            values = variable_rows.all_values(conn)
            limits = limit_rows.all_limits(conn)
            try:
                plain = secret_rows.decrypt_all(conn, self.keys)
            except SecretError as exc:
                return RunConfig(values, {}, str(exc), limits=limits)
        return RunConfig(values, plain, None, masker_for(plain.values()), limits)

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
