"""The batched writer: the driver's one `EventSink` into the run history database.

`handle(events)` only appends to a queue, so recording never slows the tasks. A background thread
drains the queue at least every `flush_interval` (200 ms), folds what it took into a `Batch` and
commits it in ONE transaction of bulk statements: flows and flow runs inserted, task runs upserted
with their latest state, history and logs inserted-or-ignored (unique constraints make a repeated
event a no-op), and last the flow runs' own state. A run's final state is therefore committed
together with, never before, the events that preceded it. A run whose row exists but never
started (a deployment's SCHEDULED run, created ahead) takes its start's fields on
`FlowRunStarted`.

When the database is locked or unreachable the batch is kept, retried with exponential backoff
(capped at `max_backoff`), and grows with the events that keep arriving: nothing is lost while
the process lives. `flush(timeout)` blocks until every event handled so far is committed.

The writer also refreshes `heartbeat` on each of its active flow runs every `heartbeat_seconds`;
if the driver dies, the heartbeat goes stale and readers record the run as CRASHED.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dagflow.core.runs import RunEvent
from dagflow.core.states import StateType
from dagflow.store.batch import HISTORY_COLUMNS, LOG_COLUMNS, TASK_COLUMNS, Batch, Seen
from dagflow.store.bulk import BulkInsert
from dagflow.store.database import make_engine
from dagflow.store.encoding import encode_parameters
from dagflow.store.schema import flow_runs, flows, logs, state_history, task_runs

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2
MAX_BACKOFF = 2.0
EAGER_BATCH = 20_000  # write at once when this many events wait, without waiting the interval
WRITER_BUSY_TIMEOUT_MS = 1000
GIVE_UP_AFTER = 5
FLOW_COLUMNS = ("name", "version", "created")
RUN_COLUMNS = (
    "id",
    "flow_name",
    "flow_version",
    "parameters",
    "state",
    "attempts",
    "created",
    "started",
    "heartbeat",
    "parent_run_id",
    "parent_task_key",
    "cluster_address",
    "dashboard_link",
    "entrypoint",
)  # attempts at a batch failing for a reason other than the connection


class StoreWriter:
    """Records the event stream of this process's runs; thread-safe `handle` and `flush`."""

    def __init__(
        self,
        url: URL,
        *,
        heartbeat_seconds: float = 5.0,
        flush_interval: float = FLUSH_INTERVAL,
        max_backoff: float = MAX_BACKOFF,
        application_name: str | None = None,
    ) -> None:
        self.url = url
        self.application_name = application_name or f"dagflow-writer-{os.getpid()}"
        # A short lock wait: the retry loop, not SQLite, waits out a long lock.
        self._engine = make_engine(
            url, self.application_name, pool_size=1, busy_timeout_ms=WRITER_BUSY_TIMEOUT_MS
        )
        self._pg = self._engine.dialect.name == "postgresql"
        self._heartbeat_seconds = heartbeat_seconds
        self._interval = flush_interval
        self._max_backoff = max_backoff
        self._cond = threading.Condition(threading.Lock())
        self._queue: list[RunEvent] = []
        self._received = 0
        self._settled = 0  # events committed (or recognised as duplicates)
        self._flush_requested = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._seen = Seen()
        self._known: set[str] = set()  # run ids whose flow_runs row is committed
        self._active: set[str] = set()  # run ids not in a final state
        self._last_heartbeat = 0.0
        self.failed_attempts = 0
        self.dropped = 0
        self.last_error: str | None = None
        self._statements()

    # ------------------------------------------------------------------ EventSink

    def handle(self, events: Sequence[RunEvent]) -> None:
        """Queue a batch of events; returns at once."""
        with self._cond:
            if self._stopping:
                log.error("store writer is closed; %d events not recorded", len(events))
                return
            self._queue.extend(events)
            self._received += len(events)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="dagflow-store-writer", daemon=True
                )
                self._thread.start()
            if len(self._queue) >= EAGER_BATCH:
                self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event handled so far is committed (or `timeout` passes)."""
        if not self.wait_committed(timeout):
            log.warning(
                "store writer: %d events not recorded yet (%s); still retrying",
                self.pending,
                self.last_error or "database busy",
            )

    # ------------------------------------------------------------------ control

    def wait_committed(self, timeout: float | None = None) -> bool:
        """Like `flush`, but says whether everything handled so far was committed in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._received
            while self._settled < target:
                self._flush_requested = True
                self._cond.notify_all()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is not None else 1.0)
            return True

    @property
    def pending(self) -> int:
        """Events handled but not yet committed."""
        with self._cond:
            return self._received - self._settled

    def close(self, timeout: float | None = 10.0) -> None:
        """Commit what is queued (waiting up to `timeout`), then stop the thread."""
        self.wait_committed(timeout)
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.error("store writer: closing with %d events not recorded", self.pending)
                return
        self._engine.dispose()

    # ------------------------------------------------------------------ the thread

    def _loop(self) -> None:
        batch = Batch()
        backoff = 0.0
        last_write = 0.0
        failures = 0
        while True:
            with self._cond:
                if backoff:
                    if not self._stopping:
                        self._cond.wait(backoff)
                else:
                    deadline = last_write + self._interval
                    while not (
                        self._stopping or self._flush_requested or len(self._queue) >= EAGER_BATCH
                    ):
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._cond.wait(remaining)
                events, self._queue = self._queue, []
                self._flush_requested = False
                stopping = self._stopping
            for ev in events:
                batch.size += 1
                if self._seen.first_time(ev):
                    batch.add(ev)
            heartbeat = bool(self._active) and (
                time.time() - self._last_heartbeat >= self._heartbeat_seconds
            )
            last_write = time.monotonic()
            try:
                if batch or heartbeat:
                    self._write(batch, heartbeat)
            except Exception as exc:
                self.failed_attempts += 1
                self.last_error = _reason(exc)
                transient = _is_transient(exc)
                failures = 0 if transient else failures + 1
                if stopping and not transient:
                    failures = GIVE_UP_AFTER
                if failures >= GIVE_UP_AFTER:
                    log.error(
                        "store writer: dropping %d events after %d failed writes: %s",
                        batch.size,
                        failures,
                        self.last_error,
                    )
                    self.dropped += batch.size
                else:
                    if self.failed_attempts == 1 or backoff >= self._max_backoff:
                        log.warning("store writer: write failed, retrying: %s", self.last_error)
                    backoff = min(self._max_backoff, max(0.05, backoff * 2))
                    continue
            backoff = 0.0
            failures = 0
            with self._cond:
                self._settled += batch.size
                self._cond.notify_all()
                done = self._stopping and not self._queue
            batch = Batch()
            if done:
                return

    # ------------------------------------------------------------------ SQL

    def _statements(self) -> None:
        dialect = self._engine.dialect

        def keep_version(stmt: Any) -> Any:
            return stmt.on_conflict_do_update(
                index_elements=[flows.c.name], set_={"version": stmt.excluded.version}
            )

        def upsert_task(stmt: Any) -> Any:
            ex = stmt.excluded
            return stmt.on_conflict_do_update(
                index_elements=[task_runs.c.run_id, task_runs.c.task_key],
                set_={
                    "task_name": ex.task_name,
                    "map_index": func.coalesce(ex.map_index, task_runs.c.map_index),
                    "state": ex.state,
                    "attempts": case(
                        (ex.attempts > task_runs.c.attempts, ex.attempts),
                        else_=task_runs.c.attempts,
                    ),
                    "started": func.coalesce(task_runs.c.started, ex.started),
                    "ended": func.coalesce(ex.ended, task_runs.c.ended),
                    "worker": func.coalesce(ex.worker, task_runs.c.worker),
                    "error_type": func.coalesce(ex.error_type, task_runs.c.error_type),
                    "error": func.coalesce(ex.error, task_runs.c.error),
                    "traceback": func.coalesce(ex.traceback, task_runs.c.traceback),
                    "result_location": func.coalesce(
                        ex.result_location, task_runs.c.result_location
                    ),
                    "result_size": func.coalesce(ex.result_size, task_runs.c.result_size),
                    "result_serializer": func.coalesce(
                        ex.result_serializer, task_runs.c.result_serializer
                    ),
                    "cache_key": func.coalesce(ex.cache_key, task_runs.c.cache_key),
                },
            )

        def ignore(stmt: Any) -> Any:
            return stmt.on_conflict_do_nothing()

        def start_run(stmt: Any) -> Any:
            # A run created before it started (a deployment's SCHEDULED run) becomes this run;
            # a run that already started once (resumed, or an event delivered twice) is kept.
            ex = stmt.excluded
            started = ("flow_version", "parameters", "started", "heartbeat", "cluster_address")
            return stmt.on_conflict_do_update(
                index_elements=[flow_runs.c.id],
                set_={c: ex[c] for c in (*started, "dashboard_link", "entrypoint")},
                where=flow_runs.c.started.is_(None),
            )

        self._insert_flows = BulkInsert(dialect, flows, FLOW_COLUMNS, keep_version)
        self._insert_runs = BulkInsert(dialect, flow_runs, RUN_COLUMNS, start_run)
        self._upsert_tasks = BulkInsert(dialect, task_runs, TASK_COLUMNS, upsert_task)
        self._insert_history = BulkInsert(dialect, state_history, HISTORY_COLUMNS, ignore)
        self._insert_logs = BulkInsert(dialect, logs, LOG_COLUMNS, ignore)
        self._update_runs = (
            update(flow_runs)
            .where(flow_runs.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"),
                attempts=case(
                    (bindparam("b_attempts") > flow_runs.c.attempts, bindparam("b_attempts")),
                    else_=flow_runs.c.attempts,
                ),
                ended=bindparam("b_ended"),
                error=bindparam("b_error"),
                heartbeat=bindparam("b_now"),
            )
        )
        self._beat = (
            update(flow_runs)
            .where(flow_runs.c.id == bindparam("b_id"))
            .values(heartbeat=bindparam("b_now"))
        )

    def _write(self, batch: Batch, heartbeat: bool) -> None:
        now = time.time()
        with self._engine.begin() as conn:
            self._drop_unknown_runs(conn, batch)
            if batch.started:
                self._write_started(conn, batch, now)
            self._upsert_tasks.execute(conn, [t.row() for t in batch.tasks.values()])
            self._insert_history.execute(conn, batch.history)
            self._insert_logs.execute(conn, batch.logs)
            if batch.runs:
                conn.execute(
                    self._update_runs,
                    [
                        {
                            "b_id": d.run_id,
                            "b_state": d.state,
                            "b_attempts": d.attempts,
                            "b_ended": d.ended,
                            "b_error": d.error,
                            "b_now": now,
                        }
                        for d in batch.runs.values()
                    ],
                )
            beating = self._active - set(batch.runs) - set(batch.started) if heartbeat else set()
            if beating:
                conn.execute(self._beat, [{"b_id": r, "b_now": now} for r in sorted(beating)])
        if heartbeat:
            self._last_heartbeat = now
        self._after_commit(batch)

    def _drop_unknown_runs(self, conn: Connection, batch: Batch) -> None:
        unknown = batch.run_ids() - self._known - set(batch.started)
        if not unknown:
            return
        found = set(conn.scalars(select(flow_runs.c.id).where(flow_runs.c.id.in_(unknown))))
        self._known |= found
        missing = unknown - found
        if missing:
            dropped = batch.drop_runs(missing)
            log.error(
                "store writer: %d records of runs never started (%s) not recorded",
                dropped,
                ", ".join(sorted(missing)[:3]),
            )

    def _write_started(self, conn: Connection, batch: Batch, now: float) -> None:
        started = list(batch.started.values())
        names = {ev.flow_name: (ev.flow_name, ev.flow_version, now) for ev in started}
        self._insert_flows.execute(conn, list(names.values()))
        self._insert_runs.execute(
            conn,
            [
                (
                    ev.run_id,
                    ev.flow_name,
                    ev.flow_version,
                    encode_parameters(ev.parameters),
                    StateType.PENDING.value,
                    0,
                    ev.time,
                    ev.time,
                    now,
                    ev.parent_run_id,
                    ev.parent_task_key,
                    ev.cluster_address,
                    ev.dashboard_link,
                    ev.entrypoint,
                )
                for ev in started
            ],
        )

    def _after_commit(self, batch: Batch) -> None:
        if len(self._known) > 100_000:
            self._known.clear()
        self._known |= set(batch.started)
        self._known |= set(batch.runs)
        for run_id in batch.started:
            self._active.add(run_id)
        for delta in batch.runs.values():
            if delta.final:
                self._active.discard(delta.run_id)
                self._seen.finished(delta.run_id)
            else:
                self._active.add(delta.run_id)


def _is_transient(exc: BaseException) -> bool:
    """Errors of the connection or of a lock, which a later attempt may not meet."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        return type(exc).__name__ in ("OperationalError", "InterfaceError")
    return False


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else None
    lines = str(orig or exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {lines[0] if lines else ''}"
