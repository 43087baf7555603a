"""Reading the run history back as `FlowRun` / `TaskRun` / `LogEvent` values.

Owns naming a run (its id or a unique prefix of it), listing runs, and loading one with its task
runs, its history and a loader for its logs. Every read first applies crash detection
(`crashes.py`) to the runs it returns, so a run whose driver died is never shown as RUNNING.
ORM-free: rows become `dagflow.core.runs` values here and nothing else leaves.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Row, and_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from dagflow.core.history import Setback
from dagflow.core.keys import logical, parse_key
from dagflow.core.runs import FlowRun, LogEvent, TaskRun
from dagflow.core.states import StateType, Transition
from dagflow.errors import NotFound, StoreError
from dagflow.store import crashes
from dagflow.store.database import driver_reason
from dagflow.store.encoding import decode_parameters
from dagflow.store.schema import FLOW_LEVEL, flow_runs, logs, state_history, task_runs

MAX_CANDIDATES = 5
SETBACKS = (StateType.RETRYING, StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED)


def parse_state(state: StateType | str) -> StateType:
    """A state from user input, case-insensitive; `StoreError` naming the choices otherwise."""
    if isinstance(state, StateType):
        return state
    try:
        return StateType(str(state).strip().upper())
    except ValueError:
        choices = ", ".join(s.value for s in StateType)
        raise StoreError(f"unknown state {state!r} (one of {choices})") from None


class Reader:
    """Read queries over one engine; `crash_after` is the heartbeat age taken as a crash."""

    def __init__(self, engine: Engine, crash_after: float, late_after: float = 60.0) -> None:
        self.engine = engine
        self.crash_after = crash_after
        self.late_after = late_after

    # ------------------------------------------------------------------ naming a run

    def resolve(self, ref: str) -> str:
        """The full id of the run named by `ref` (an id or a unique prefix of one)."""
        ref = (ref or "").strip()
        if not ref:
            raise NotFound("no run id given")
        escaped = _like(ref)
        with self._connect() as conn:
            # a whole id (what the pages and the API use) is one primary-key lookup; only a
            # prefix needs LIKE, which SQLite cannot answer from the index
            if conn.scalar(select(flow_runs.c.id).where(flow_runs.c.id == ref)) is not None:
                return ref
            ids = list(
                conn.scalars(
                    select(flow_runs.c.id)
                    .where(flow_runs.c.id.like(f"{escaped}%", escape="\\"))
                    .order_by(flow_runs.c.created.desc())
                    .limit(MAX_CANDIDATES + 1)
                )
            )
        if ref in ids:
            return ref
        if not ids:
            raise NotFound(f"no flow run with id {ref!r}")
        if len(ids) > 1:
            shown = ", ".join(ids[:MAX_CANDIDATES])
            more = " and more" if len(ids) > MAX_CANDIDATES else ""
            raise NotFound(f"run id {ref!r} is ambiguous: it matches {shown}{more}")
        return ids[0]

    # ------------------------------------------------------------------ reading runs

    def get_flow_run(self, ref: str, *, task_history: bool = True) -> FlowRun:
        """One run by id or unique prefix, with task runs, histories and a log loader; without
        the task runs' histories when `task_history` is False (the run's own is always read)."""
        run_id = self.resolve(ref)
        shown = self.detect_crashes([run_id])
        with self._connect() as conn:
            row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).one()
            run = self.flow_run_of(row, shown)
            run.all_task_runs = self._task_runs(conn, [run_id])[run_id]
            if task_history:
                history = self._history(conn, run_id)
            else:
                history = {FLOW_LEVEL: self.flow_histories(conn, [run_id]).get(run_id, [])}
        run.history = history.pop(FLOW_LEVEL, [])
        for key, steps in history.items():
            task = run.all_task_runs.get(key)
            if task is not None:
                task.history = steps
        return run

    def list_flow_runs(
        self, flow: str | None = None, state: StateType | str | None = None, limit: int = 50
    ) -> list[FlowRun]:
        """The newest runs first, optionally of one flow and/or in one state."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        wanted = parse_state(state) if state is not None else None
        shown = self.detect_crashes(None)
        query = select(flow_runs).order_by(flow_runs.c.created.desc()).limit(limit)
        if flow is not None:
            query = query.where(flow_runs.c.flow_name == flow)
        if wanted is not None:
            query = query.where(flow_runs.c.state == wanted.value)
        with self._connect() as conn:
            runs = [self.flow_run_of(row, shown) for row in conn.execute(query)]
            if wanted is not None:
                runs = [r for r in runs if r.state is wanted]
            tasks = self._task_runs(conn, [r.id for r in runs])
            histories = self.flow_histories(conn, [r.id for r in runs])
        for run in runs:
            run.all_task_runs = tasks[run.id]
            run.history = histories.get(run.id, [])
        return runs

    def logs(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, LogEvent]]:
        """Log records of a run in time order, as (row id, record); `task` is a name or key."""
        query = select(logs).where(logs.c.run_id == run_id, logs.c.id > after)
        if task is not None:
            query = query.where(task_match(task, logs.c.task_name, logs.c.task_key))
        query = query.order_by(logs.c.time, logs.c.id)
        with self._connect() as conn:
            return [
                (
                    row.id,
                    LogEvent(
                        row.run_id,
                        row.task_key,
                        row.task_name,
                        row.level,
                        row.time,
                        row.message,
                        row.worker,
                    ),
                )
                for row in conn.execute(query)
            ]

    def setbacks(
        self, run_id: str, task: str | None = None, after: int = 0
    ) -> list[tuple[int, Setback]]:
        """A run's task retries and failures in time order, as (history row id, setback)."""
        h, t = state_history.c, task_runs.c
        joined = state_history.outerjoin(
            task_runs, and_(t.run_id == h.run_id, t.task_key == h.task_key)
        )
        columns = (h.id, h.task_key, h.to_state, h.attempt, h.time, h.message, t.task_name,
                   t.state, t.attempts, t.error_type, t.traceback)  # fmt: skip
        query = (
            select(*columns)
            .select_from(joined)
            .where(
                h.run_id == run_id,
                h.task_key != FLOW_LEVEL,
                h.to_state.in_([s.value for s in SETBACKS]),
                h.id > after,
            )
            .order_by(h.time, h.id)
        )
        if task is not None:
            query = query.where(task_match(task, t.task_name, h.task_key))
        out: list[tuple[int, Setback]] = []
        with self._connect() as conn:
            for row in conn.execute(query):
                last = row.state == row.to_state and row.attempts == row.attempt
                out.append(
                    (
                        row.id,
                        Setback(
                            logical(row.task_key),
                            row.task_name,
                            StateType(row.to_state),
                            row.attempt,
                            row.time,
                            row.message,
                            row.error_type if last else None,
                            row.traceback if last else None,
                        ),
                    )
                )
        return out

    def task_names(self, run_id: str) -> list[str]:
        """The names of a run's tasks, sorted."""
        query = select(task_runs.c.task_name).where(task_runs.c.run_id == run_id).distinct()
        with self._connect() as conn:
            return sorted(conn.scalars(query))

    def has_task(self, run_id: str, ref: str) -> bool:
        """Does the run have a task run with this name, key or logical key?"""
        t = task_runs.c
        query = (
            select(t.task_key)
            .where(t.run_id == run_id, task_match(ref, t.task_name, t.task_key))
            .limit(1)
        )
        with self._connect() as conn:
            return conn.scalar(query) is not None

    def detect_crashes(self, run_ids: list[str] | None) -> dict[str, crashes.Crash]:
        """Record stale active runs as CRASHED; returns those only shown as such (unrecorded)."""
        try:
            with self.engine.connect() as conn:
                found = crashes.find_stale(conn, self.crash_after, run_ids)
        except DBAPIError as exc:
            raise StoreError(f"reading the run history failed: {driver_reason(exc)}") from None
        if not found:
            return {}
        return {c.run_id: c for c in crashes.record(self.engine, found)}

    # ------------------------------------------------------------------ rows to values

    def connect(self) -> _Reading:
        """A read connection; driver errors become `StoreError`."""
        return _Reading(self.engine)

    def _connect(self) -> _Reading:
        return _Reading(self.engine)

    def flow_run_of(self, row: Row[tuple[object, ...]], shown: dict[str, crashes.Crash]) -> FlowRun:
        """A `flow_runs` row as a `FlowRun` (no task runs), shown CRASHED if `shown` says so."""
        m = row._mapping
        run = FlowRun(
            id=m["id"],
            flow_name=m["flow_name"],
            parameters=decode_parameters(m["parameters"]),
            flow_version=m["flow_version"],
            state=StateType(m["state"]),
            started=m["started"],
            ended=m["ended"],
            attempts=m["attempts"],
            error=m["error"],
            error_type=m["error_type"],
            parent_run_id=m["parent_run_id"],
            dashboard_link=m["dashboard_link"],
            cluster_address=m["cluster_address"],
            entrypoint=m["entrypoint"],
            deployment=m["deployment_id"],
            scheduled_time=m["scheduled_time"],
            result_location=m["result_location"],
            result_serializer=m["result_serializer"],
            origin=m["origin"],
            event_id=m["event_id"],
            served_by=m["claimed_by"],
        )
        if run.scheduled_time is not None:
            # late: not started within the grace period after its tick (still waiting, or began)
            began = run.started if run.started is not None else None
            if began is None and run.state is StateType.SCHEDULED:
                began = time.time()
            run.late = began is not None and began - run.scheduled_time > self.late_after
        crash = shown.get(run.id)
        if crash is not None and run.state is crash.from_state:
            run.state, run.ended = StateType.CRASHED, crash.time
            run.error, run.error_type = crash.message, crashes.CRASH_ERROR_TYPE
        run_id = run.id
        run._log_loader = lambda: [ev for _, ev in self.logs(run_id)]
        return run

    def _task_runs(self, conn: Connection, run_ids: list[str]) -> dict[str, dict[str, TaskRun]]:
        out: dict[str, dict[str, TaskRun]] = {run_id: {} for run_id in run_ids}
        for chunk in _chunks(run_ids, 500):
            query = (
                select(task_runs)
                .where(task_runs.c.run_id.in_(chunk))
                .order_by(task_runs.c.started, task_runs.c.task_key)
            )
            for row in conn.execute(query):
                out[row.run_id][row.task_key] = task_run_of(row)
        return out

    def flow_histories(self, conn: Connection, run_ids: list[str]) -> dict[str, list[Transition]]:
        """The flow runs' own transitions (not their tasks'), for their running times."""
        out: dict[str, list[Transition]] = {}
        for chunk in _chunks(run_ids, 500):
            query = (
                select(state_history)
                .where(state_history.c.run_id.in_(chunk), state_history.c.task_key == FLOW_LEVEL)
                .order_by(state_history.c.time, state_history.c.id)
            )
            for row in conn.execute(query):
                out.setdefault(row.run_id, []).append(_transition(row))
        return out

    def _history(self, conn: Connection, run_id: str) -> dict[str, list[Transition]]:
        out: dict[str, list[Transition]] = {}
        query = (
            select(state_history)
            .where(state_history.c.run_id == run_id)
            .order_by(state_history.c.time, state_history.c.id)
        )
        for row in conn.execute(query):
            out.setdefault(row.task_key, []).append(_transition(row))
        return out


class _Reading:
    """A read connection whose driver errors become one-line `StoreError`s."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._conn: Connection | None = None

    def __enter__(self) -> Connection:
        try:
            self._conn = self._engine.connect()
        except DBAPIError as exc:
            raise StoreError(f"reading the run history failed: {driver_reason(exc)}") from None
        return self._conn

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        assert self._conn is not None
        self._conn.close()
        if isinstance(exc, DBAPIError):
            raise StoreError(f"reading the run history failed: {driver_reason(exc)}") from None


def task_run_of(row: Row[tuple[object, ...]]) -> TaskRun:
    """A `task_runs` row as a `TaskRun` (without its history)."""
    m = row._mapping
    return TaskRun(
        key=logical(m["task_key"]),
        dask_key=m["task_key"],
        name=m["task_name"],
        map_index=m["map_index"],
        state=StateType(m["state"]),
        attempts=m["attempts"],
        started=m["started"],
        ended=m["ended"],
        worker=m["worker"],
        error_type=m["error_type"],
        error=m["error"],
        traceback=m["traceback"],
        result_location=m["result_location"],
        result_size=m["result_size"],
        result_serializer=m["result_serializer"],
        cache_key=m["cache_key"],
        result_identity=m["result_identity"],
    )


def _transition(row: Row[tuple[object, ...]]) -> Transition:
    m = row._mapping
    return Transition(
        StateType(m["from_state"]) if m["from_state"] else None,
        StateType(m["to_state"]),
        m["time"],
        m["attempt"],
        m["message"],
    )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def task_match(task: str, name_column: Any, key_column: Any) -> Any:
    """Rows of the task named `task`: a task name, a Dask key, or a logical key `task[n]` (every
    flow attempt's `task-token[n]`)."""
    return (name_column == task) | key_match(task, key_column)


def key_match(key: str, key_column: Any) -> Any:
    """Rows of the task run `key`: a Dask key, or a logical key `task[n]` (every flow
    attempt's `task-token[n]`)."""
    match = key_column == key
    try:
        name, index = parse_key(key)
    except ValueError:
        return match
    if "-" in name:
        return match
    return match | key_column.like(_like(name) + f"-%[{index}]", escape="\\")


def _like(text: str) -> str:
    """`text` with LIKE's wildcards escaped (escape character: backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
