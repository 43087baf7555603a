"""The statements of one write transaction: a folded `Batch` becomes rows in every table.

Flows and flow runs are inserted, task runs upserted with their latest state, history and logs
inserted-or-ignored (unique constraints make a repeated event a no-op), and last the flow runs'
own state, so a run's final state is committed together with, never before, what preceded it.
Every statement is a bulk one (`bulk.py`): a round trip per table and batch, never per row.

`repaired` gives an event whose text a database refused (lone surrogates, NUL characters) in a
form it takes, for the writer's salvage of a batch that failed for such a reason.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlalchemy import bindparam, case, func, update
from sqlalchemy.engine import Connection, Dialect

from dagflow.core.runs import FlowRunStarted, LogEvent, RunEvent, StateEvent
from dagflow.core.states import StateType
from dagflow.core.text import storable
from dagflow.store.batch import EDGE_COLUMNS, HISTORY_COLUMNS, LOG_COLUMNS, TASK_COLUMNS, Batch
from dagflow.store.bulk import BulkInsert
from dagflow.store.encoding import encode_parameters
from dagflow.store.schema import flow_runs, flows, logs, state_history, task_edges, task_runs

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
)


class Statements:
    """The bulk statements of one database's writer, compiled once."""

    def __init__(self, dialect: Dialect) -> None:
        def keep_version(stmt: Any) -> Any:
            return stmt.on_conflict_do_update(
                index_elements=[flows.c.name], set_={"version": stmt.excluded.version}
            )

        def upsert_task(stmt: Any) -> Any:
            ex = stmt.excluded
            keep = {
                name: func.coalesce(getattr(ex, name), getattr(task_runs.c, name))
                for name in (
                    "map_index",
                    "ended",
                    "worker",
                    "error_type",
                    "error",
                    "traceback",
                    "result_location",
                    "result_size",
                    "result_serializer",
                    "cache_key",
                    "result_identity",
                )
            }
            return stmt.on_conflict_do_update(
                index_elements=[task_runs.c.run_id, task_runs.c.task_key],
                set_={
                    **keep,
                    "task_name": ex.task_name,
                    "state": ex.state,
                    "attempts": case(
                        (ex.attempts > task_runs.c.attempts, ex.attempts),
                        else_=task_runs.c.attempts,
                    ),
                    "started": func.coalesce(task_runs.c.started, ex.started),
                },
            )

        def ignore(stmt: Any) -> Any:
            return stmt.on_conflict_do_nothing()

        self.insert_flows = BulkInsert(dialect, flows, FLOW_COLUMNS, keep_version)

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

        self.insert_runs = BulkInsert(dialect, flow_runs, RUN_COLUMNS, start_run)
        self.upsert_tasks = BulkInsert(dialect, task_runs, TASK_COLUMNS, upsert_task)
        self.insert_history = BulkInsert(dialect, state_history, HISTORY_COLUMNS, ignore)
        self.insert_logs = BulkInsert(dialect, logs, LOG_COLUMNS, ignore)
        self.insert_edges = BulkInsert(dialect, task_edges, EDGE_COLUMNS, ignore)
        self.update_runs = (
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
                error_type=bindparam("b_error_type"),
                result_location=func.coalesce(
                    bindparam("b_result_location"), flow_runs.c.result_location
                ),
                result_serializer=func.coalesce(
                    bindparam("b_result_serializer"), flow_runs.c.result_serializer
                ),
                heartbeat=bindparam("b_now"),
            )
        )
        self.supersede = (
            update(task_runs)
            .where(
                task_runs.c.run_id == bindparam("b_run"),
                task_runs.c.task_key.like(bindparam("b_like"), escape="\\"),
                task_runs.c.task_key != bindparam("b_key"),
            )
            .values(superseded=True)
        )
        self.beat = (
            update(flow_runs)
            .where(flow_runs.c.id == bindparam("b_id"))
            .values(heartbeat=bindparam("b_now"))
        )

    def write(self, conn: Connection, batch: Batch, now: float, beating: set[str]) -> None:
        """Every statement of `batch`, in order, in the transaction of `conn`."""
        if batch.started:
            self._write_started(conn, batch, now)
        self.upsert_tasks.execute(conn, [t.row() for t in batch.tasks.values()])
        if batch.superseding:
            conn.execute(
                self.supersede,
                [{"b_run": r, "b_like": like, "b_key": k} for r, like, k in batch.superseding],
            )
        self.insert_history.execute(conn, batch.history)
        self.insert_logs.execute(conn, batch.logs)
        self.insert_edges.execute(conn, sorted(batch.edges))
        if batch.runs:
            conn.execute(
                self.update_runs,
                [
                    {
                        "b_id": d.run_id,
                        "b_state": d.state,
                        "b_attempts": d.attempts,
                        "b_ended": d.ended,
                        "b_error": d.error,
                        "b_error_type": d.error_type,
                        "b_result_location": d.result_location,
                        "b_result_serializer": d.result_serializer,
                        "b_now": now,
                    }
                    for d in batch.runs.values()
                ],
            )
        if beating:
            conn.execute(self.beat, [{"b_id": r, "b_now": now} for r in sorted(beating)])

    def _write_started(self, conn: Connection, batch: Batch, now: float) -> None:
        started = list(batch.started.values())
        names = {ev.flow_name: (ev.flow_name, ev.flow_version, now) for ev in started}
        self.insert_flows.execute(conn, list(names.values()))
        self.insert_runs.execute(
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


def repaired(ev: RunEvent) -> RunEvent:
    """`ev` with every text field in a form any database takes (see `core/text.py`)."""
    changes: dict[str, Any] = {
        f.name: storable(value)
        for f in dataclasses.fields(ev)
        if isinstance(value := getattr(ev, f.name), str) and storable(value) != value
    }
    return dataclasses.replace(ev, **changes) if changes else ev


def stripped(ev: RunEvent, reason: str) -> RunEvent | None:
    """The least of `ev` worth keeping when even its repaired form was refused."""
    if isinstance(ev, LogEvent):
        return dataclasses.replace(
            ev, message=f"[this log record could not be stored: {storable(reason)}]"
        )
    if isinstance(ev, StateEvent):
        return dataclasses.replace(
            ev, message=storable(reason)[:500], traceback=None, error_type=None, worker=None
        )
    if isinstance(ev, FlowRunStarted):
        return dataclasses.replace(ev, parameters={}, entrypoint=None)
    return None  # a run's task graph (TaskEdges) is not worth a stripped form
