"""Scheduled runs in the database: created, claimed and taken once; cancelled across processes.

The life of a deployment's run, and the one statement that decides each step:

- **created**: a `flow_runs` row in SCHEDULED with an `idempotency_key`, inserted with ON
  CONFLICT DO NOTHING under a unique index, so a second scheduler, a restart or a retried
  transaction never creates a tick twice (`create_runs`; its history row goes in with it).
- **claimed** by one serve process (`claim_due`): in ONE transaction that first takes the write
  lock, due runs are chosen oldest first, within the caller's capacity and each deployment's
  `max_active_runs`, and marked `claimed_by`. PostgreSQL locks the candidate rows and their
  deployments with `FOR UPDATE SKIP LOCKED` (two schedulers claim disjoint runs without waiting);
  SQLite takes its single write lock with `BEGIN IMMEDIATE`, so the choice and the conditional
  UPDATE see the same data. A claim whose run was not taken within `reclaim_after` seconds (its
  serve process died) may be claimed again.
- **taken** by the child process that runs it (`take`): SCHEDULED -> PENDING only if still
  claimed by that serve process and not cancelled. This is what makes a run start at most once;
  the engine then records it under the same id.
- **cancelled** (`control.request_cancel`): a SCHEDULED run ends CANCELLED at once (a conditional
  update, as `take` is: exactly one of them wins); an active run gets `cancel_requested`, which
  its driver polls (`cancel_requests`: one indexed query for all of a process's runs).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import Connection, Engine

from dagflow.core.deployments import Deployment
from dagflow.core.states import StateType, can_transition
from dagflow.store.database import insert_for
from dagflow.store.encoding import encode_parameters
from dagflow.store.schema import FLOW_LEVEL, deployments, flow_runs, flows, state_history

S = StateType
ACTIVE = (S.PENDING.value, S.RUNNING.value, S.RETRYING.value, S.PAUSED.value, S.CANCELLING.value)
SKIPPED = "skipped: a later tick of this deployment is due (catchup is off)"


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run to create for a deployment: its tick, origin and identity."""

    deployment: Deployment
    scheduled_time: float
    origin: str  # schedule | backfill | manual | trigger
    key: str
    parameters: dict[str, Any]
    event_id: str | None = None  # the event that asked for it (`events.py`)


@dataclass(frozen=True, slots=True)
class Claimed:
    """A run this serve process claimed, and what its child needs to run it."""

    run_id: str
    deployment_id: str
    scheduled_time: float
    claimed_at: float


def create_runs(engine: Engine, runs: Sequence[NewRun], now: float) -> list[str]:
    """Insert SCHEDULED runs; returns the ids of those created (an existing key is skipped)."""
    if not runs:
        return []
    with engine.begin() as conn:
        return insert_runs(conn, runs, now)


def insert_runs(
    conn: Connection, runs: Sequence[NewRun], now: float, ids: Sequence[str] | None = None
) -> list[str]:
    """`create_runs` inside the caller's transaction (events record their runs with them);
    `ids`, when given, are the new runs' ids, one per run."""
    created: list[str] = []
    ids = ids if ids is not None else [uuid.uuid4().hex for _ in runs]
    if runs:
        insert = insert_for(conn)
        names = sorted({r.deployment.flow_name for r in runs})
        conn.execute(
            insert(flows).on_conflict_do_nothing(),
            [{"name": n, "version": None, "created": now} for n in names],
        )
        rows = [
            {
                "id": run_id,
                "flow_name": r.deployment.flow_name,
                "parameters": encode_parameters(r.parameters),
                "state": S.SCHEDULED.value,
                "attempts": 0,
                "created": now,
                "entrypoint": r.deployment.entrypoint,
                "deployment_id": r.deployment.full_name,
                "scheduled_time": r.scheduled_time,
                "origin": r.origin,
                "idempotency_key": r.key,
                "event_id": r.event_id,
            }
            for r, run_id in zip(runs, ids, strict=True)
        ]
        stmt = insert(flow_runs).on_conflict_do_nothing().returning(flow_runs.c.id)
        for chunk in _chunks(rows, 500):
            created.extend(conn.scalars(stmt, chunk))
        if created:
            _history(conn, [(run_id, None, S.SCHEDULED, 0, "") for run_id in created], now)
    return created


def last_ticks(engine: Engine, deployment_ids: list[str]) -> dict[str, float]:
    """Per deployment, the latest tick its schedules created a run for."""
    if not deployment_ids:
        return {}
    with engine.connect() as conn:
        return {
            dep: t
            for dep, t in conn.execute(
                select(flow_runs.c.deployment_id, func.max(flow_runs.c.scheduled_time))
                .where(
                    flow_runs.c.deployment_id.in_(deployment_ids),
                    flow_runs.c.origin == "schedule",
                    # ticks cancelled unstarted (a pause, a schedule change) are planned again;
                    # their keys still exist, so none is created twice
                    or_(flow_runs.c.state != S.CANCELLED.value, flow_runs.c.started.is_not(None)),
                )
                .group_by(flow_runs.c.deployment_id)
            )
            if t is not None
        }


def skip_missed(engine: Engine, now: float) -> list[str]:
    """Cancel the due, unclaimed ticks of catchup=false deployments that a later due tick of the
    same deployment supersedes; returns their ids."""
    later = flow_runs.alias("later")
    superseded = (
        select(later.c.id)
        .where(
            later.c.deployment_id == flow_runs.c.deployment_id,
            later.c.origin == "schedule",
            later.c.state == S.SCHEDULED.value,
            later.c.scheduled_time <= now,
            later.c.scheduled_time > flow_runs.c.scheduled_time,
        )
        .exists()
    )
    no_catchup = select(deployments.c.id).where(deployments.c.catchup.is_(False))
    with engine.begin() as conn:
        ids = list(
            conn.scalars(
                select(flow_runs.c.id).where(
                    flow_runs.c.state == S.SCHEDULED.value,
                    flow_runs.c.origin == "schedule",
                    flow_runs.c.claimed_by.is_(None),
                    flow_runs.c.scheduled_time <= now,
                    flow_runs.c.deployment_id.in_(no_catchup),
                    superseded,
                )
            )
        )
        if ids:
            return _end_scheduled(conn, ids, S.CANCELLED, SKIPPED, now, None)
    return []


def claim_due(
    engine: Engine,
    served_by: str,
    now: float,
    capacity: int,
    reclaim_after: float,
    deployment_ids: Sequence[str] | None = None,
) -> list[Claimed]:
    """Claim up to `capacity` due runs for `served_by` (see the module docstring)."""
    if capacity <= 0:
        return []
    pg = engine.dialect.name == "postgresql"
    stale = now - reclaim_after
    with engine.connect() as conn:
        if not pg:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            claimed = _claim(conn, served_by, now, capacity, stale, pg, deployment_ids)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return claimed


def _claim(
    conn: Connection,
    served_by: str,
    now: float,
    capacity: int,
    stale: float,
    pg: bool,
    deployment_ids: Sequence[str] | None,
) -> list[Claimed]:
    paused_ticks = and_(deployments.c.paused.is_(True), flow_runs.c.origin == "schedule")
    query = (
        select(flow_runs.c.id, flow_runs.c.deployment_id, flow_runs.c.scheduled_time)
        .join(deployments, deployments.c.id == flow_runs.c.deployment_id)
        .where(
            flow_runs.c.state == S.SCHEDULED.value,
            flow_runs.c.scheduled_time <= now,
            or_(flow_runs.c.claimed_by.is_(None), flow_runs.c.claimed_at < stale),
            ~paused_ticks,
        )
        .order_by(flow_runs.c.scheduled_time, flow_runs.c.id)
        .limit(max(capacity * 4, 64))
    )
    if deployment_ids is not None:
        query = query.where(flow_runs.c.deployment_id.in_(list(deployment_ids)))
    if pg:
        query = query.with_for_update(skip_locked=True, of=flow_runs)
    candidates = list(conn.execute(query))
    if not candidates:
        return []
    dep_ids = sorted({row.deployment_id for row in candidates})
    limits_query = select(deployments.c.id, deployments.c.max_active_runs).where(
        deployments.c.id.in_(dep_ids)
    )
    if pg:
        limits_query = limits_query.with_for_update(skip_locked=True)
    limits = dict(conn.execute(limits_query).all())
    busy = or_(
        flow_runs.c.state.in_(ACTIVE),
        and_(
            flow_runs.c.state == S.SCHEDULED.value,
            flow_runs.c.claimed_by.is_not(None),
            flow_runs.c.claimed_at >= stale,
        ),
    )
    active: dict[str, int] = dict(
        conn.execute(
            select(flow_runs.c.deployment_id, func.count())
            .where(flow_runs.c.deployment_id.in_(list(limits)), busy)
            .group_by(flow_runs.c.deployment_id)
        ).all()
    )
    chosen: list[Claimed] = []
    for row in candidates:
        if len(chosen) >= capacity:
            break
        dep = row.deployment_id
        if dep not in limits or active.get(dep, 0) >= limits[dep]:
            continue  # its deployment is locked by another scheduler, or at max_active_runs
        active[dep] = active.get(dep, 0) + 1
        chosen.append(Claimed(row.id, dep, row.scheduled_time, now))
    if chosen:
        conn.execute(
            update(flow_runs)
            .where(
                flow_runs.c.id.in_([c.run_id for c in chosen]),
                flow_runs.c.state == S.SCHEDULED.value,
            )
            .values(claimed_by=served_by, claimed_at=now)
        )
    return chosen


def take(engine: Engine, run_id: str, served_by: str, now: float) -> bool:
    """SCHEDULED -> PENDING for the child that will run it; False if it may not (cancelled,
    claimed again by another serve process after a long wait, or already taken)."""
    with engine.begin() as conn:
        changed = conn.execute(
            update(flow_runs)
            .where(
                flow_runs.c.id == run_id,
                flow_runs.c.state == S.SCHEDULED.value,
                flow_runs.c.claimed_by == served_by,
                flow_runs.c.cancel_requested.is_(None),
            )
            .values(state=S.PENDING.value, heartbeat=now)
        ).rowcount
    return changed == 1


def fail_unstarted(
    engine: Engine, run_id: str, served_by: str, message: str, error_type: str, now: float
) -> bool:
    """A claimed run that cannot start (its flow does not load, its parameters do not validate)
    ends FAILED with `message`; False if it was no longer this serve process's to end."""
    with engine.begin() as conn:
        owned = conn.scalar(
            select(flow_runs.c.id).where(
                flow_runs.c.id == run_id,
                flow_runs.c.state == S.SCHEDULED.value,
                flow_runs.c.claimed_by == served_by,
            )
        )
        if owned is None:
            return False
        return bool(_end_scheduled(conn, [run_id], S.FAILED, message, now, error_type))


def release_claims(engine: Engine, served_by: str) -> int:
    """Give back runs this serve process claimed but did not start (it is stopping)."""
    with engine.begin() as conn:
        return int(
            conn.execute(
                update(flow_runs)
                .where(flow_runs.c.claimed_by == served_by, flow_runs.c.state == S.SCHEDULED.value)
                .values(claimed_by=None, claimed_at=None)
            ).rowcount
        )


def cancel_requests(engine: Engine, run_ids: Sequence[str]) -> list[str]:
    """Which of `run_ids` someone asked to cancel (one indexed query)."""
    if not run_ids:
        return []
    with engine.connect() as conn:
        return list(
            conn.scalars(
                select(flow_runs.c.id).where(
                    flow_runs.c.id.in_(list(run_ids)), flow_runs.c.cancel_requested.is_not(None)
                )
            )
        )


def _end_scheduled(
    conn: Connection,
    run_ids: list[str],
    state: StateType,
    message: str,
    now: float,
    error_type: str | None,
) -> list[str]:
    """SCHEDULED -> `state` for those of `run_ids` still SCHEDULED, with their history rows
    (through PENDING when the table has no direct move: a claimed run that could not start)."""
    ended: list[str] = []
    now = max(now, time.time())  # recorded when it happens: after the row's SCHEDULED step
    for run_id in run_ids:
        changed = conn.execute(
            update(flow_runs)
            .where(flow_runs.c.id == run_id, flow_runs.c.state == S.SCHEDULED.value)
            .values(state=state.value, ended=now, error=message, error_type=error_type)
        ).rowcount
        if changed == 1:
            ended.append(run_id)
    if not ended:
        return ended
    if can_transition(S.SCHEDULED, state):
        steps = [(r, S.SCHEDULED, state, 0, message) for r in ended]
    else:
        steps = [(r, S.SCHEDULED, S.PENDING, 0, "claimed, not started") for r in ended]
        steps += [(r, S.PENDING, state, 0, message) for r in ended]
    _history(conn, steps, now)
    return ended


def _history(
    conn: Connection,
    steps: Sequence[tuple[str, StateType | None, StateType, int, str]],
    now: float,
) -> None:
    insert = insert_for(conn)
    conn.execute(
        insert(state_history).on_conflict_do_nothing(),
        [
            {
                "run_id": run_id,
                "task_key": FLOW_LEVEL,
                "from_state": src.value if src is not None else None,
                "to_state": dst.value,
                "time": now,
                "attempt": attempt,
                "message": message,
            }
            for run_id, src, dst, attempt, message in steps
        ],
    )


def _chunks(rows: list[dict[str, Any]], size: int) -> list[list[dict[str, Any]]]:
    return [rows[i : i + size] for i in range(0, len(rows), size)]
