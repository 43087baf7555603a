"""Requests that change a run from outside the process driving it: cancel.

A run's driver may live in another process (a `dagflow run` in a terminal, a serving process's
child), so a request is recorded in the database and the driver acts on it:

- a SCHEDULED run (nothing runs yet) is CANCELLED at once (the same conditional update as a serve
  child's `take`: exactly one of them wins);
- an active run (PENDING, RUNNING, RETRYING, PAUSED) is marked CANCELLING, with a history entry
  saying who asked, and gets `cancel_requested`; its driver's watcher (`dagflow.cancels`) polls
  that column, stops the run's tasks and ends it CANCELLED (the engine then records the same
  CANCELLING step, which the unique index keeps once);
- a run already CANCELLING is left as it is; a finished run refuses (`StateConflict`).

Each change is a conditional UPDATE on the state read, so a request racing with the driver's own
write never records a transition from a state the run has left.
"""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.states import StateType
from dagflow.errors import NotFound, StateConflict, StoreError
from dagflow.store.database import driver_reason, insert_for
from dagflow.store.schema import FLOW_LEVEL, flow_runs, state_history

S = StateType
CANCELLABLE = (S.PENDING, S.RUNNING, S.RETRYING, S.PAUSED)
ATTEMPTS = 3  # a request that keeps losing races with the driver's writes gives up


def request_cancel(engine: Engine, run_id: str, reason: str) -> StateType:
    """Ask for run `run_id` to be cancelled; returns the state it is in afterwards."""
    for _ in range(ATTEMPTS):
        try:
            with engine.begin() as conn:
                changed = _try_cancel(conn, run_id, reason)
        except DBAPIError as exc:
            raise StoreError(f"recording the cancel request failed: {driver_reason(exc)}") from None
        if changed is not None:
            return changed
    raise StoreError(f"run {run_id} kept changing state; the cancel request was not recorded")


def _try_cancel(conn: Connection, run_id: str, reason: str) -> StateType | None:
    row = conn.execute(
        select(flow_runs.c.state, flow_runs.c.attempts).where(flow_runs.c.id == run_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no flow run with id {run_id!r}")
    state = S(row.state)
    if state is S.CANCELLING:
        return state
    if state is S.SCHEDULED:
        target = S.CANCELLED
    elif state in CANCELLABLE:
        target = S.CANCELLING
    else:
        raise StateConflict(f"flow run {run_id} already ended {state}; nothing to cancel")
    now = time.time()
    values: dict[str, object] = {"state": target.value}
    if target is S.CANCELLED:
        values.update(ended=now, error=reason)
    else:
        values.update(cancel_requested=now)
    changed = conn.execute(
        update(flow_runs)
        .where(flow_runs.c.id == run_id, flow_runs.c.state == state.value)
        .values(**values)
    ).rowcount
    if changed != 1:
        return None  # the driver wrote in between: read again
    insert = insert_for(conn)
    conn.execute(
        insert(state_history).on_conflict_do_nothing(),
        [
            {
                "run_id": run_id,
                "task_key": FLOW_LEVEL,
                "from_state": state.value,
                "to_state": target.value,
                "time": now,
                "attempt": row.attempts,
                "message": reason,
            }
        ],
    )
    return target
