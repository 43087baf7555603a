"""Events in the database: recorded once, each starting its run once; triggers' positions.

`fire` is the one statement sequence that turns what a trigger saw into runs, in ONE
transaction:

1. insert the events with ON CONFLICT DO NOTHING on their id (derived from their identity,
   `core/events.py`): the ids returned are the events nobody recorded before. This is the gate:
   a restart, a second serve process or a retried delivery sees the event already there and
   starts nothing (on PostgreSQL a concurrent insert of the same id waits for the first
   transaction, then does nothing);
2. for each group of new events (one event, or a gathered window), render the run's parameters
   (the caller's `render`; a template naming a missing field is recorded as the events' `error`,
   no run) and insert the SCHEDULED run, its idempotency key derived from the events' ids under
   the unique index of `flow_runs`;
3. point the events at their run, and move the trigger's position (events counted, the last
   one, a watermark when given): so a rows trigger's watermark is stored after, and with, the
   runs it created.

Costs: one round trip per statement per chunk of 500 events, whatever the burst's size.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event, run_key
from dagflow.errors import DagflowError
from dagflow.store.deployments import insert_for
from dagflow.store.schema import events, flow_runs, trigger_positions
from dagflow.store.ticks import NewRun, insert_runs

CHUNK = 500
Render = Callable[[list[Event]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Fired:
    """What one group of events did: the run it started, or why it started none."""

    events: tuple[Event, ...]
    run_id: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A recorded event, with the deployment and trigger that saw it and the run it started."""

    event: Event
    deployment: str
    trigger: str
    run_id: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class TriggerPosition:
    """Where a trigger is: events recorded, the last one, and its watermark (rows)."""

    deployment: str
    trigger: str
    position: Any
    events: int
    last_event_id: str | None
    last_event_time: float | None


def fire(
    engine: Engine,
    deployment: Deployment,
    trigger: str,
    groups: Sequence[Sequence[Event]],
    render: Render,
    *,
    origin: str = "trigger",
    position: Any = None,
    now: float | None = None,
) -> list[Fired]:
    """Record `groups` of events and start one run per group of new events (module docstring).
    Returns what each group with at least one new event did."""
    now = time.time() if now is None else now
    fired: list[Fired] = []
    all_groups = [list(g) for g in groups if g]
    with engine.begin() as conn:
        for start in range(0, max(len(all_groups), 1), CHUNK):
            chunk = all_groups[start : start + CHUNK]
            fired.extend(_fire(conn, deployment, trigger, chunk, render, origin, now))
        if fired or position is not None:
            _move(conn, deployment.full_name, trigger, fired, position, now)
    return fired


def _fire(
    conn: Connection,
    deployment: Deployment,
    trigger: str,
    groups: list[list[Event]],
    render: Render,
    origin: str,
    now: float,
) -> list[Fired]:
    if not groups:
        return []
    insert = insert_for(conn)
    rows = [
        {
            "id": e.id,
            "kind": e.kind,
            "source": e.source[:1024],
            "payload": json.dumps(dict(e.payload), default=str),
            "time": e.time,
            "deployment_id": deployment.full_name,
            "trigger": trigger,
        }
        for group in groups
        for e in group
    ]
    new: set[str] = set(
        conn.scalars(insert(events).on_conflict_do_nothing().returning(events.c.id), rows)
    )
    if not new:
        return []
    out: list[Fired] = []
    runs: list[NewRun] = []
    ids: list[str] = []
    for group in groups:
        fresh = [e for e in group if e.id in new]
        new.difference_update(e.id for e in fresh)  # an event twice in one call counts once
        if not fresh:
            continue
        try:
            params = render(fresh)
        except DagflowError as exc:
            out.append(Fired(tuple(fresh), None, " ".join(str(exc).split())))
            continue
        run_id = uuid.uuid4().hex
        runs.append(NewRun(deployment, now, origin, run_key(fresh), params, fresh[0].id))
        ids.append(run_id)
        out.append(Fired(tuple(fresh), run_id))
    created = set(insert_runs(conn, runs, now, ids)) if runs else set()
    out = [f if f.run_id is None or f.run_id in created else Fired(f.events, None, "run exists")
           for f in out]  # fmt: skip
    links = [{"eid": e.id, "rid": f.run_id, "err": f.error} for f in out for e in f.events]
    if links:
        conn.execute(
            update(events)
            .where(events.c.id == bindparam("eid"))
            .values(run_id=bindparam("rid"), error=bindparam("err")),
            links,
        )
    return out


def _move(
    conn: Connection,
    deployment: str,
    trigger: str,
    fired: list[Fired],
    position: Any,
    now: float,
) -> None:
    count = sum(len(f.events) for f in fired)
    last = max((e for f in fired for e in f.events), key=lambda e: e.time, default=None)
    values: dict[str, Any] = {"updated": now}
    if last is not None:
        values |= {"last_event_id": last.id, "last_event_time": last.time}
    if position is not None:
        values["position"] = json.dumps(position)
    insert = insert_for(conn)
    stmt = insert(trigger_positions).values(
        deployment_id=deployment, trigger=trigger, events=count, **values
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[trigger_positions.c.deployment_id, trigger_positions.c.trigger],
            set_={**values, "events": trigger_positions.c.events + count},
        )
    )


def known(engine: Engine, ids: Iterable[str]) -> set[str]:
    """Which of `ids` are recorded events (chunked: a burst's ids in a few queries)."""
    wanted = list(ids)
    found: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            found.update(conn.scalars(select(events.c.id).where(events.c.id.in_(chunk))))
    return found


def positions(
    engine: Engine, deployment_ids: Sequence[str]
) -> dict[tuple[str, str], TriggerPosition]:
    """Each trigger's position, by (deployment, trigger)."""
    if not deployment_ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(trigger_positions).where(
                trigger_positions.c.deployment_id.in_(list(deployment_ids))
            )
        )
        return {
            (r.deployment_id, r.trigger): TriggerPosition(
                r.deployment_id,
                r.trigger,
                json.loads(r.position) if r.position is not None else None,
                r.events,
                r.last_event_id,
                r.last_event_time,
            )
            for r in rows
        }


def list_events(
    engine: Engine,
    deployment: str | None = None,
    run_id: str | None = None,
    limit: int = 50,
) -> list[EventRecord]:
    """Recorded events, newest first (of one deployment, or the ones that started one run)."""
    query = select(events).order_by(events.c.time.desc(), events.c.id).limit(limit)
    if deployment is not None:
        query = query.where(events.c.deployment_id == deployment)
    if run_id is not None:
        query = query.where(events.c.run_id == run_id)
    with engine.connect() as conn:
        return [_record(r) for r in conn.execute(query)]


def get_event(engine: Engine, event_id: str) -> EventRecord | None:
    with engine.connect() as conn:
        row = conn.execute(select(events).where(events.c.id == event_id)).first()
    return _record(row) if row is not None else None


def count_for_run(engine: Engine, run_id: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.scalar(select(func.count()).select_from(events).where(events.c.run_id == run_id))
            or 0
        )


def ended_runs(
    engine: Engine, after: float, states: Sequence[str], limit: int = 500
) -> list[tuple[str, str, str | None, str, float, str, str | None, str | None]]:
    """Runs that ended after `after` in `states`, oldest first: (id, flow, deployment, state,
    ended, parameters JSON, result location, its serializer), for flow-run triggers."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                flow_runs.c.id,
                flow_runs.c.flow_name,
                flow_runs.c.deployment_id,
                flow_runs.c.state,
                flow_runs.c.ended,
                flow_runs.c.parameters,
                flow_runs.c.result_location,
                flow_runs.c.result_serializer,
            )
            .where(
                flow_runs.c.ended > after,
                flow_runs.c.state.in_(list(states)),
                flow_runs.c.parent_run_id.is_(None),
            )
            .order_by(flow_runs.c.ended, flow_runs.c.id)
            .limit(limit)
        )
        return [tuple(r) for r in rows]


def _record(row: Any) -> EventRecord:
    event = Event(row.id, row.kind, row.source, json.loads(row.payload), row.time)
    return EventRecord(event, row.deployment_id, row.trigger, row.run_id, row.error)
