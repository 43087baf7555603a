"""Crash detection on read: an active run whose driver stopped refreshing its heartbeat.

A run in PENDING, RUNNING, RETRYING, PAUSED or CANCELLING whose `heartbeat` is older than
`crash_after` seconds has lost its driver (the writer that beats for it lives in the driver's
process). Whoever reads it next records it CRASHED, with a history entry saying since when the
heartbeat is stale, and ends its unfinished task runs CRASHED too. The update is conditional on
the state and heartbeat read, so two readers never both record it, and a run whose driver comes
back to life is not touched. If the database cannot be written just now (locked), the reader still
shows the run as CRASHED; the next reader records it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.states import FINAL_STATES, StateType
from dagflow.store.schema import FLOW_LEVEL, flow_runs, state_history, task_runs

log = logging.getLogger(__name__)
S = StateType

ACTIVE_STATES = (S.PENDING, S.RUNNING, S.RETRYING, S.PAUSED, S.CANCELLING)
CRASH_ERROR_TYPE = "HeartbeatStale"


@dataclass(frozen=True, slots=True)
class Crash:
    """A run found with a stale heartbeat, and what was (or will be) recorded about it."""

    run_id: str
    from_state: StateType
    heartbeat: float
    attempts: int
    time: float
    message: str


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def find_stale(
    conn: Connection, crash_after: float, run_ids: list[str] | None = None
) -> list[Crash]:
    now = time.time()
    limit = now - crash_after
    query = select(
        flow_runs.c.id, flow_runs.c.state, flow_runs.c.heartbeat, flow_runs.c.attempts
    ).where(
        flow_runs.c.state.in_([s.value for s in ACTIVE_STATES]),
        flow_runs.c.heartbeat < limit,
    )
    if run_ids is not None:
        query = query.where(flow_runs.c.id.in_(run_ids))
    return [
        Crash(
            row.id,
            S(row.state),
            row.heartbeat,
            row.attempts,
            now,
            f"heartbeat stale since {iso(row.heartbeat)}: no word from the driver for"
            f" {now - row.heartbeat:.0f}s (limit {crash_after:g}s); the driver was lost",
        )
        for row in conn.execute(query)
    ]


def record(engine: Engine, crashes: list[Crash]) -> list[Crash]:
    """Record each crash; returns those that could not be recorded now (shown, not stored)."""
    unrecorded: list[Crash] = []
    for crash in crashes:
        try:
            with engine.begin() as conn:
                _record_one(conn, crash)
        except DBAPIError as exc:
            log.debug("could not record crash of run %s now: %s", crash.run_id, exc)
            unrecorded.append(crash)
    return unrecorded


def _record_one(conn: Connection, crash: Crash) -> None:
    changed = conn.execute(
        update(flow_runs)
        .where(
            flow_runs.c.id == crash.run_id,
            flow_runs.c.state == crash.from_state.value,
            flow_runs.c.heartbeat == crash.heartbeat,
        )
        .values(
            state=S.CRASHED.value,
            ended=crash.time,
            error=crash.message,
            error_type=CRASH_ERROR_TYPE,
        )
    ).rowcount
    if changed != 1:
        return  # another reader recorded it, or the driver wrote again
    # the dialects' INSERTs are imported here, when a crash is recorded: reading stays quick
    from sqlalchemy.dialects import postgresql, sqlite

    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    history = insert(state_history).on_conflict_do_nothing()
    rows = [
        {
            "run_id": crash.run_id,
            "task_key": FLOW_LEVEL,
            "from_state": crash.from_state.value,
            "to_state": S.CRASHED.value,
            "time": crash.time,
            "attempt": crash.attempts,
            "message": crash.message,
        }
    ]
    unfinished = and_(
        task_runs.c.run_id == crash.run_id,
        task_runs.c.state.not_in([s.value for s in FINAL_STATES]),
    )
    task_message = "the flow run's driver was lost (heartbeat stale)"
    for task in conn.execute(
        select(task_runs.c.task_key, task_runs.c.state, task_runs.c.attempts).where(unfinished)
    ):
        rows.append(
            {
                "run_id": crash.run_id,
                "task_key": task.task_key,
                "from_state": task.state,
                "to_state": S.CRASHED.value,
                "time": crash.time,
                "attempt": task.attempts,
                "message": task_message,
            }
        )
    conn.execute(
        update(task_runs)
        .where(unfinished)
        .values(
            state=S.CRASHED.value,
            ended=crash.time,
            error=task_message,
            error_type=CRASH_ERROR_TYPE,
        )
    )
    conn.execute(history, rows)
