"""Requests that change a run from outside the process driving it: cancel, and resume.

A run's driver may live in another process (a `dagflow run` in a terminal, a serving process's
child), so a request is recorded in the database and the driver acts on it:

- a SCHEDULED run (nothing runs yet) is CANCELLED at once (the same conditional update as a serve
  child's `take`: exactly one of them wins);
- an active run (PENDING, RUNNING, RETRYING, PAUSED) is marked CANCELLING, with a history entry
  saying who asked, and gets `cancel_requested`; its driver's watcher (`dagflow.cancels`) polls
  that column, stops the run's tasks and ends it CANCELLED (the engine then records the same
  CANCELLING step, which the unique index keeps once);
- a run already CANCELLING is left as it is; a finished run refuses (`StateConflict`).

A resume request (`request_resume`) is for a deployment's run that ended FAILED, TIMED_OUT,
CRASHED or CANCELLED: it sets `resume_requested`, and a `dagflow serve` process serving that
deployment claims it (`claim_resumes`: the flag cleared and `claimed_by` set in one conditional
UPDATE, so exactly one serving process resumes it) and resumes the run in a child process, as
`dagflow resume` would. A flag left on a run that is no longer resumable (someone resumed it
another way meanwhile) is dropped by the next claim, so a later failure is not resumed unasked.

Each change is a conditional UPDATE on the state read, so a request racing with the driver's own
write never records a transition from a state the run has left.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.states import StateType
from dagflow.errors import NotFound, StateConflict, StoreError
from dagflow.store.database import driver_reason, insert_for
from dagflow.store.resume import RESUMABLE
from dagflow.store.schema import FLOW_LEVEL, deployments, flow_runs, state_history
from dagflow.store.ticks import Claimed

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


def request_resume(engine: Engine, run_id: str, state: StateType, now: float) -> float:
    """Queue run `run_id` (read in `state`, a resumable one) for a serving process to resume;
    returns when it was asked (the earlier request's time if one is pending)."""
    try:
        with engine.begin() as conn:
            row = conn.execute(
                select(flow_runs.c.deployment_id, flow_runs.c.resume_requested, deployments.c.id)
                .select_from(
                    flow_runs.outerjoin(deployments, deployments.c.id == flow_runs.c.deployment_id)
                )
                .where(flow_runs.c.id == run_id)
            ).one_or_none()
            if row is None:
                raise NotFound(f"no flow run with id {run_id!r}")
            if row.deployment_id is None:
                raise StateConflict(
                    f"flow run {run_id} was not started by a deployment, so no serving process "
                    f"can resume it; resume it where its code is: dagflow resume {run_id}"
                )
            if row[2] is None:
                raise StateConflict(
                    f"flow run {run_id}: its deployment {row.deployment_id!r} is no longer "
                    f"registered; resume it with: dagflow resume {run_id}"
                )
            if row.resume_requested is not None:
                return float(row.resume_requested)
            changed = conn.execute(
                update(flow_runs)
                .where(
                    flow_runs.c.id == run_id,
                    flow_runs.c.state == state.value,
                    flow_runs.c.resume_requested.is_(None),
                )
                .values(resume_requested=now)
            ).rowcount
    except DBAPIError as exc:
        raise StoreError(f"recording the resume request failed: {driver_reason(exc)}") from None
    if changed != 1:
        raise StateConflict(f"flow run {run_id} changed state meanwhile; ask again")
    return now


def claim_resumes(
    engine: Engine, served_by: str, now: float, capacity: int, deployment_ids: Sequence[str]
) -> list[Claimed]:
    """Claim up to `capacity` runs of `deployment_ids` queued for resuming (oldest request
    first); each is claimed by one caller only."""
    if capacity <= 0 or not deployment_ids:
        return []
    resumable = {s.value for s in RESUMABLE}
    wanted = set(deployment_ids)
    claimed: list[Claimed] = []
    with engine.begin() as conn:
        # one indexed read per loop; nothing is written unless a request is pending
        rows = conn.execute(
            select(
                flow_runs.c.id,
                flow_runs.c.deployment_id,
                flow_runs.c.state,
                flow_runs.c.scheduled_time,
            )
            .where(flow_runs.c.resume_requested.is_not(None))
            .order_by(flow_runs.c.resume_requested)
            .limit(200)
        ).all()
        stale = [row.id for row in rows if row.state not in resumable]
        if stale:  # fulfilled another way (a `dagflow resume` meanwhile): not to be repeated
            conn.execute(
                update(flow_runs)
                .where(flow_runs.c.id.in_(stale), flow_runs.c.state.not_in(list(resumable)))
                .values(resume_requested=None)
            )
        for row in rows:
            if len(claimed) >= capacity:
                break
            if row.state not in resumable or row.deployment_id not in wanted:
                continue
            won = conn.execute(
                update(flow_runs)
                .where(flow_runs.c.id == row.id, flow_runs.c.resume_requested.is_not(None))
                .values(resume_requested=None, claimed_by=served_by, claimed_at=now)
            ).rowcount
            if won == 1:
                tick = row.scheduled_time if row.scheduled_time is not None else now
                claimed.append(Claimed(row.id, row.deployment_id, tick, now))
    return claimed


def give_back_resume(engine: Engine, run_id: str, served_by: str, now: float) -> bool:
    """Queue again a resume this serving process claimed but did not start (it is stopping)."""
    with engine.begin() as conn:
        return (
            conn.execute(
                update(flow_runs)
                .where(
                    flow_runs.c.id == run_id,
                    flow_runs.c.claimed_by == served_by,
                    flow_runs.c.state.in_([s.value for s in RESUMABLE]),
                )
                .values(resume_requested=now)
            ).rowcount
            == 1
        )
