"""Deployments in the database: registered, read back as `Deployment` values, paused, removed.

A deployment row is keyed by `flow/name`; its schedules are rows of `deployment_schedules`, in
order, replaced whole when the deployment is saved again. Saving is an upsert, so two serve
processes registering the same deployments agree, and it reports which deployments' schedules
changed: their upcoming ticks (created for the old schedules) are dropped (`unschedule`), as are
a paused deployment's and a removed one's runs that never started.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection, Engine

from dagflow.core.deployments import Deployment, split_full_name
from dagflow.core.schedules import CronSchedule, IntervalSchedule, Schedule
from dagflow.core.states import StateType
from dagflow.core.triggers import trigger_from_spec
from dagflow.errors import NotFound
from dagflow.store.database import insert_for
from dagflow.store.encoding import decode_parameters, encode_parameters
from dagflow.store.schema import deployment_schedules, deployments, flow_runs, state_history

S = StateType


@dataclass(frozen=True, slots=True)
class DeploymentInfo:
    """A registered deployment and what the history says about it."""

    deployment: Deployment
    created: float
    updated: float
    next_run: float | None  # the earliest SCHEDULED run's tick
    last_run_id: str | None  # the latest run that started
    last_run_state: StateType | None


def save(engine: Engine, items: list[Deployment], now: float) -> list[str]:
    """Register `items` (insert or update); returns the full names whose schedules changed."""
    changed: list[str] = []
    with engine.begin() as conn:
        old = _schedules(conn, [d.full_name for d in items])
        insert = insert_for(conn)
        for dep in items:
            row = _row(dep, now)
            stmt = insert(deployments).values(created=now, **row)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=[deployments.c.id],
                    set_={k: v for k, v in row.items() if k not in ("id", "paused")},
                )
            )
            specs = list(dep.schedules)
            if dep.full_name in old and old[dep.full_name] != specs:
                changed.append(dep.full_name)
            if old.get(dep.full_name) != specs:
                conn.execute(
                    delete(deployment_schedules).where(
                        deployment_schedules.c.deployment_id == dep.full_name
                    )
                )
                if specs:
                    conn.execute(
                        deployment_schedules.insert(),
                        [_schedule_row(dep.full_name, i, s) for i, s in enumerate(specs)],
                    )
    return changed


def _row(dep: Deployment, now: float) -> dict[str, Any]:
    return {
        "id": dep.full_name,
        "flow_name": dep.flow_name,
        "name": dep.name,
        "entrypoint": dep.entrypoint,
        "parameters": encode_parameters(dict(dep.parameters)),
        "cluster": dep.cluster,
        "tags": json.dumps(list(dep.tags)),
        "description": dep.description,
        "paused": dep.paused,
        "max_active_runs": dep.max_active_runs,
        "catchup": dep.catchup,
        "triggers": json.dumps(dep.trigger_specs()),
        "updated": now,
    }


def _schedule_row(dep_id: str, position: int, schedule: Schedule) -> dict[str, Any]:
    if isinstance(schedule, CronSchedule):
        cron, every, anchor = schedule.cron, None, None
    else:
        cron, every, anchor = None, schedule.every, schedule.anchor
    return {
        "deployment_id": dep_id,
        "position": position,
        "kind": schedule.kind,
        "cron": cron,
        "interval_seconds": every,
        "anchor": anchor,
        "timezone": schedule.timezone,
    }


def _schedules(conn: Connection, ids: list[str] | None) -> dict[str, list[Schedule]]:
    query = select(deployment_schedules).order_by(
        deployment_schedules.c.deployment_id, deployment_schedules.c.position
    )
    if ids is not None:
        query = query.where(deployment_schedules.c.deployment_id.in_(ids))
    out: dict[str, list[Schedule]] = {}
    for row in conn.execute(query):
        schedule: Schedule
        if row.kind == "cron":
            schedule = CronSchedule(row.cron, row.timezone)
        else:
            schedule = IntervalSchedule(row.interval_seconds, row.anchor, row.timezone)
        out.setdefault(row.deployment_id, []).append(schedule)
    return out


def load(conn: Connection, ids: list[str] | None = None) -> dict[str, tuple[Deployment, Any]]:
    """Registered deployments by full name, with their rows (for created/updated)."""
    query = select(deployments).order_by(deployments.c.id)
    if ids is not None:
        query = query.where(deployments.c.id.in_(ids))
    rows = list(conn.execute(query))
    schedules = _schedules(conn, ids)
    out: dict[str, tuple[Deployment, Any]] = {}
    for row in rows:
        dep = Deployment(
            name=row.name,
            flow_name=row.flow_name,
            entrypoint=row.entrypoint,
            parameters=decode_parameters(row.parameters),
            schedules=tuple(schedules.get(row.id, [])),
            cluster=row.cluster,
            tags=tuple(json.loads(row.tags or "[]")),
            description=row.description,
            paused=bool(row.paused),
            max_active_runs=row.max_active_runs,
            catchup=bool(row.catchup),
            triggers=tuple(trigger_from_spec(t) for t in json.loads(row.triggers or "[]")),
        )
        out[row.id] = (dep, row)
    return out


def infos(conn: Connection, ids: list[str] | None = None) -> list[DeploymentInfo]:
    """`load` plus each deployment's next scheduled tick and latest started run."""
    found = load(conn, ids)
    if not found:
        return []
    names = list(found)
    nexts = dict(
        conn.execute(
            select(flow_runs.c.deployment_id, func.min(flow_runs.c.scheduled_time))
            .where(flow_runs.c.deployment_id.in_(names), flow_runs.c.state == S.SCHEDULED.value)
            .group_by(flow_runs.c.deployment_id)
        ).all()
    )
    latest = (
        select(flow_runs.c.deployment_id, func.max(flow_runs.c.started).label("started"))
        .where(flow_runs.c.deployment_id.in_(names), flow_runs.c.started.is_not(None))
        .group_by(flow_runs.c.deployment_id)
        .subquery()
    )
    lasts = {
        row.deployment_id: (row.id, StateType(row.state))
        for row in conn.execute(
            select(flow_runs.c.deployment_id, flow_runs.c.id, flow_runs.c.state).join(
                latest,
                (latest.c.deployment_id == flow_runs.c.deployment_id)
                & (latest.c.started == flow_runs.c.started),
            )
        )
    }
    out = []
    for name, (dep, row) in found.items():
        last_id, last_state = lasts.get(name, (None, None))
        out.append(
            DeploymentInfo(dep, row.created, row.updated, nexts.get(name), last_id, last_state)
        )
    return out


def resolve(conn: Connection, ref: str) -> str:
    """The full name of the deployment `ref` names (`flow/name`, or a name unique across flows)."""
    ref = (ref or "").strip()
    if "/" in ref:
        split_full_name(ref)
        found = conn.scalar(select(deployments.c.id).where(deployments.c.id == ref))
        if found is None:
            raise NotFound(f"no deployment {ref!r} (see: dagflow deployments ls)")
        return str(found)
    ids = list(conn.scalars(select(deployments.c.id).where(deployments.c.name == ref)))
    if not ids:
        raise NotFound(f"no deployment named {ref!r} (see: dagflow deployments ls)")
    if len(ids) > 1:
        raise NotFound(f"deployment name {ref!r} is ambiguous: {', '.join(ids)}; use FLOW/NAME")
    return ids[0]


def set_paused(engine: Engine, ref: str, paused: bool) -> str:
    with engine.begin() as conn:
        full = resolve(conn, ref)
        conn.execute(
            update(deployments)
            .where(deployments.c.id == full)
            .values(paused=paused, updated=time.time())
        )
    return full


def remove(engine: Engine, ref: str) -> str:
    """Forget a deployment (its schedules go with it; its runs stay as history)."""
    with engine.begin() as conn:
        full = resolve(conn, ref)
        conn.execute(
            delete(deployment_schedules).where(deployment_schedules.c.deployment_id == full)
        )
        conn.execute(delete(deployments).where(deployments.c.id == full))
    return full


def unschedule(
    engine: Engine, deployment_ids: list[str], after: float | None, origin: str | None
) -> int:
    """Delete the unclaimed SCHEDULED runs of deployments (with ticks after `after`, of
    `origin`, when given): runs that never started and no longer apply (a pause, a schedule
    change, a removal). Deleted, not cancelled, so their ticks can be created again later."""
    query = select(flow_runs.c.id).where(
        flow_runs.c.deployment_id.in_(deployment_ids),
        flow_runs.c.state == S.SCHEDULED.value,
        flow_runs.c.claimed_by.is_(None),
    )
    if after is not None:
        query = query.where(flow_runs.c.scheduled_time > after)
    if origin is not None:
        query = query.where(flow_runs.c.origin == origin)
    deleted = 0
    with engine.begin() as conn:
        for run_id in list(conn.scalars(query)):
            gone = conn.execute(
                delete(flow_runs).where(
                    flow_runs.c.id == run_id,
                    flow_runs.c.state == S.SCHEDULED.value,
                    flow_runs.c.claimed_by.is_(None),
                )
            ).rowcount
            if gone:
                conn.execute(delete(state_history).where(state_history.c.run_id == run_id))
                deleted += 1
    return deleted
