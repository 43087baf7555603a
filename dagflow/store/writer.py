"""The batched writer: the driver's one `EventSink` into the run history database.

`handle(events)` only appends to a queue, so recording never slows the tasks. A background thread
drains the queue at least every `flush_interval` (200 ms), folds what it took into a `Batch` and
commits it in ONE transaction of bulk statements (`commit.py`). A run's final state is therefore
committed together with, never before, the events that preceded it.

Nothing recorded is lost while the process lives, and one bad event never costs its neighbours:

- While the database is locked or unreachable the batch is kept, retried with exponential
  backoff (capped at `max_backoff`), and grows with the events that keep arriving. The stall is
  reported once when it starts and once when it is over, not once per retry.
- A batch that fails for a reason retrying will not fix (text a database refuses, a value that
  does not fit) is salvaged: written again with every text repaired; failing that, one event at
  a time, and an event refused even then is kept in a stripped form that says why.

`flush(timeout)` blocks until every event handled so far is committed. The writer also refreshes
`heartbeat` on each of its active flow runs every `heartbeat_seconds`; if the driver dies, the
heartbeat goes stale and readers record the run as CRASHED.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from dagflow.core.runs import RunEvent
from dagflow.store.batch import Batch, Seen
from dagflow.store.commit import Statements, repaired, stripped
from dagflow.store.database import make_engine
from dagflow.store.schema import flow_runs

log = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.2
MAX_BACKOFF = 2.0
EAGER_BATCH = 20_000  # write at once when this many events wait, without waiting the interval
WRITER_BUSY_TIMEOUT_MS = 1000


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
        self._sql = Statements(self._engine.dialect)
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
        self._stalled_since: float | None = None
        self.failed_attempts = 0
        self.dropped = 0
        self.repaired = 0
        self.last_error: str | None = None

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
        added: list[RunEvent] = []  # the events folded into `batch`, for a salvage
        backoff = 0.0
        last_write = 0.0
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
            for ev in events:
                batch.size += 1
                if self._seen.first_time(ev):
                    batch.add(ev)
                    added.append(ev)
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
                if _is_transient(exc):
                    self._stalled(backoff)
                    backoff = min(self._max_backoff, max(0.05, backoff * 2))
                    continue
                self._salvage(added)
            if self._stalled_since is not None:
                took = time.monotonic() - self._stalled_since
                log.warning("store writer: recovered after %.1fs; nothing was lost", took)
                self._stalled_since = None
            backoff = 0.0
            with self._cond:
                self._settled += batch.size
                self._cond.notify_all()
                done = self._stopping and not self._queue
            batch = Batch()
            added = []
            if done:
                return

    def _stalled(self, backoff: float) -> None:
        if self._stalled_since is None:
            self._stalled_since = time.monotonic()
            log.warning(
                "store writer: cannot write to the run history (%s); keeping %d events in "
                "memory and retrying",
                self.last_error,
                self.pending,
            )

    def _write(self, batch: Batch, heartbeat: bool) -> None:
        now = time.time()
        with self._engine.begin() as conn:
            self._drop_unknown_runs(conn, batch)
            beating = self._active - set(batch.runs) - set(batch.started) if heartbeat else set()
            self._sql.write(conn, batch, now, beating)
        if heartbeat:
            self._last_heartbeat = now
        self._after_commit(batch)

    def _salvage(self, events: list[RunEvent]) -> None:
        """After a write failed for a reason retrying will not fix: keep all that can be kept."""
        reason = self.last_error or "refused"
        fixed = [repaired(ev) for ev in events]
        self.repaired += sum(1 for a, b in zip(events, fixed, strict=True) if a is not b)
        try:
            self._write(_folded(fixed), heartbeat=False)
        except Exception as exc:
            log.warning("store writer: a batch was refused (%s); writing it event by event", reason)
            self.last_error = _reason(exc)
        else:
            log.warning(
                "store writer: %d records repaired to be stored (%s)", self.repaired, reason
            )
            return
        for ev in fixed:
            for candidate in (ev, stripped(ev, self.last_error or reason)):
                if candidate is None:
                    continue
                try:
                    self._write(_folded([candidate]), heartbeat=False)
                    break
                except Exception as exc:
                    self.last_error = _reason(exc)
            else:
                self.dropped += 1
                log.error("store writer: could not record %r: %s", ev, self.last_error)

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


def _folded(events: Sequence[RunEvent]) -> Batch:
    batch = Batch()
    for ev in events:
        batch.add(ev)
    return batch


def _is_transient(exc: BaseException) -> bool:
    """Errors of the connection or of a lock, which a later attempt may not meet."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        if "malformed" in str(exc.orig) or "not a database" in str(exc.orig):
            return False  # a damaged SQLite file: retrying will not mend it
        return type(exc).__name__ in ("OperationalError", "InterfaceError")
    return False


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else None
    lines = str(orig or exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {lines[0] if lines else ''}"
