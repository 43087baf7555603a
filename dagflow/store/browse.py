"""Browsing the run history: the queries behind the server's API and pages.

Every listing is bounded and indexed, so a page costs the same with 100 or 100,000 runs:

- runs newest first with keyset pagination on `(created, id)` (`ix_flow_runs_created`, or the
  flow/state index when filtered), their task runs counted by state with one GROUP BY over the
  page's run ids (never loaded);
- one run's task runs a page at a time (filter by state and name), its transitions and log
  records after a row id (a cursor that also serves to follow a live run);
- a run's tasks grouped by name (counts by state, first start, last end) and the attempts of the
  task names small enough to draw one bar per attempt: a 10,000-item map is one group.

Like `reader.py`, it applies crash detection to the runs it returns and hands out only
`dagflow.core` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from dagflow.core.history import (
    Attempt,
    FlowSummary,
    HistoryStep,
    RunSummary,
    TaskGroup,
    attempts_of,
)
from dagflow.core.keys import logical
from dagflow.core.runs import FlowRun, LogEvent, TaskRun
from dagflow.core.states import StateType, Transition
from dagflow.store.reader import Reader, key_match, task_match, task_run_of
from dagflow.store.schema import (
    flow_runs,
    flows,
    logs,
    state_history,
    task_edges,
    task_runs,
)

Cursor = tuple[float, str]  # (created, id) of the last run of the previous page


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs a listing shows; times are seconds since the epoch, on `created`."""

    flow: str | None = None
    states: tuple[StateType, ...] = ()
    since: float | None = None
    until: float | None = None
    deployment: str | None = None  # FLOW/NAME: only the runs this deployment created


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of a run listing and the cursor of the next (None: this is the last)."""

    runs: list[RunSummary]
    next_cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class TaskRunPage:
    """Task runs of one run, one page of them, and how many match in all."""

    task_runs: list[TaskRun]
    total: int


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class Browser:
    """The browsing queries over one database (a `Reader` does the connecting)."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    # ------------------------------------------------------------------ runs

    def list_runs(self, where: RunFilter, cursor: Cursor | None, limit: int) -> RunPage:
        shown = self.reader.detect_crashes(None)
        query = select(flow_runs)
        if where.flow is not None:
            query = query.where(flow_runs.c.flow_name == where.flow)
        if where.states:
            wanted = {s.value for s in where.states}
            # a run shown CRASHED (its crash not recorded yet) is still stored in its old state
            wanted |= {c.from_state.value for c in shown.values()} if "CRASHED" in wanted else set()
            query = query.where(flow_runs.c.state.in_(sorted(wanted)))
        if where.since is not None:
            query = query.where(flow_runs.c.created >= where.since)
        if where.until is not None:
            query = query.where(flow_runs.c.created < where.until)
        if where.deployment is not None:
            query = query.where(flow_runs.c.deployment_id == where.deployment)
        if cursor is not None:
            created, run_id = cursor
            query = query.where(
                or_(
                    flow_runs.c.created < created,
                    and_(flow_runs.c.created == created, flow_runs.c.id < run_id),
                )
            )
        query = query.order_by(flow_runs.c.created.desc(), flow_runs.c.id.desc()).limit(limit + 1)
        with self.reader.connect() as conn:
            rows = list(conn.execute(query))
            more = len(rows) > limit
            rows = rows[:limit]
            runs = [self.reader.flow_run_of(row, shown) for row in rows]
            counts = self._counts(conn, [r.id for r in runs])
            self._attach_histories(conn, runs)
        next_cursor = (rows[-1].created, rows[-1].id) if more and rows else None
        if where.states:
            runs = [r for r in runs if r.state in where.states]
        return RunPage([RunSummary(r, counts.get(r.id, {})) for r in runs], next_cursor)

    def run_summaries(self, run_ids: list[str]) -> dict[str, RunSummary]:
        """The runs with these ids that the history holds (no task runs loaded), by id."""
        if not run_ids:
            return {}
        shown = self.reader.detect_crashes(run_ids)
        with self.reader.connect() as conn:
            rows = conn.execute(select(flow_runs).where(flow_runs.c.id.in_(run_ids)))
            runs = [self.reader.flow_run_of(row, shown) for row in rows]
            counts = self._counts(conn, [r.id for r in runs])
            self._attach_histories(conn, runs)
        return {r.id: RunSummary(r, counts.get(r.id, {})) for r in runs}

    def run_summary(self, ref: str) -> RunSummary:
        """One run with its flow-level history and its task runs' counts (no task runs loaded)."""
        run_id = self.reader.resolve(ref)
        shown = self.reader.detect_crashes([run_id])
        with self.reader.connect() as conn:
            row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).one()
            run = self.reader.flow_run_of(row, shown)
            counts = self._counts(conn, [run_id]).get(run_id, {})
            self._attach_histories(conn, [run])
        return RunSummary(run, counts)

    def _attach_histories(self, conn: Connection, runs: list[FlowRun]) -> None:
        """Each run's own transitions (not its tasks'): what its running time is read from."""
        histories = self.reader.flow_histories(conn, [r.id for r in runs])
        for run in runs:
            run.history = histories.get(run.id, [])

    def _counts(self, conn: Connection, run_ids: list[str]) -> dict[str, dict[StateType, int]]:
        out: dict[str, dict[StateType, int]] = {}
        if not run_ids:
            return out
        query = (
            select(task_runs.c.run_id, task_runs.c.state, func.count())
            .where(task_runs.c.run_id.in_(run_ids), task_runs.c.superseded.is_(False))
            .group_by(task_runs.c.run_id, task_runs.c.state)
        )
        for run_id, state, n in conn.execute(query):
            out.setdefault(run_id, {})[StateType(state)] = n
        return out

    def list_flows(self) -> list[FlowSummary]:
        query = (
            select(
                flows.c.name,
                flows.c.version,
                flows.c.created,
                func.count(flow_runs.c.id),
                func.max(flow_runs.c.created),
            )
            .select_from(flows.outerjoin(flow_runs, flow_runs.c.flow_name == flows.c.name))
            .group_by(flows.c.name, flows.c.version, flows.c.created)
            .order_by(flows.c.name)
        )
        with self.reader.connect() as conn:
            return [FlowSummary(*row) for row in conn.execute(query)]

    # ------------------------------------------------------------------ one run's parts

    def task_run_page(
        self,
        run_id: str,
        states: Sequence[StateType] = (),
        name: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> TaskRunPage:
        """Task runs (each call's latest) in start order (not started last), with histories."""
        where = [task_runs.c.run_id == run_id, task_runs.c.superseded.is_(False)]
        if states:
            where.append(task_runs.c.state.in_([s.value for s in states]))
        if name is not None:
            where.append(task_runs.c.task_name == name)
        query = (
            select(task_runs)
            .where(*where)
            .order_by(task_runs.c.started.is_(None), task_runs.c.started, task_runs.c.task_key)
            .offset(offset)
            .limit(limit)
        )
        with self.reader.connect() as conn:
            total = conn.scalar(select(func.count()).select_from(task_runs).where(*where)) or 0
            found = [task_run_of(row) for row in conn.execute(query)]
            by_key = {t.dask_key or t.key: t for t in found}
            for chunk in _chunks(list(by_key), 500):
                steps = conn.execute(
                    select(state_history)
                    .where(state_history.c.run_id == run_id, state_history.c.task_key.in_(chunk))
                    .order_by(state_history.c.time, state_history.c.id)
                )
                for step in steps:
                    by_key[step.task_key].history.append(_transition(step))
        return TaskRunPage(found, total)

    def history_page(
        self, run_id: str, task_key: str | None = None, after: int = 0, limit: int = 500
    ) -> list[HistoryStep]:
        """Transitions of a run (flow and tasks, or one task) after row id `after`, in order."""
        query = select(state_history).where(
            state_history.c.run_id == run_id, state_history.c.id > after
        )
        if task_key is not None:
            query = query.where(key_match(task_key, state_history.c.task_key))
        query = query.order_by(state_history.c.id).limit(limit)
        with self.reader.connect() as conn:
            return [
                HistoryStep(row.id, row.task_key or None, _transition(row))
                for row in conn.execute(query)
            ]

    def log_page(
        self,
        run_id: str,
        *,
        min_level: int = 0,
        search: str | None = None,
        task: str | None = None,
        after: int = 0,
        limit: int = 500,
    ) -> list[tuple[int, LogEvent]]:
        """Log records after row id `after`, at `min_level` or above, containing `search`."""
        query = select(logs).where(logs.c.run_id == run_id, logs.c.id > after)
        if min_level > 0:
            query = query.where(logs.c.level >= min_level)
        if search:
            query = query.where(logs.c.message.ilike(f"%{_escape_like(search)}%", escape="\\"))
        if task is not None:
            query = query.where(task_match(task, logs.c.task_name, logs.c.task_key))
        query = query.order_by(logs.c.id).limit(limit)
        with self.reader.connect() as conn:
            rows = list(conn.execute(query))
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
            for row in rows
        ]

    # ------------------------------------------------------------------ the timeline

    def task_groups(self, run_id: str) -> list[TaskGroup]:
        """The run's task runs by task name, in order of first start."""
        query = (
            select(
                task_runs.c.task_name,
                task_runs.c.state,
                func.count(),
                func.min(task_runs.c.started),
                func.max(task_runs.c.ended),
            )
            .where(task_runs.c.run_id == run_id, task_runs.c.superseded.is_(False))
            .group_by(task_runs.c.task_name, task_runs.c.state)
        )
        groups: dict[str, tuple[dict[StateType, int], list[float], list[float]]] = {}
        with self.reader.connect() as conn:
            for name, state, n, first, last in conn.execute(query):
                counts, starts, ends = groups.setdefault(name, ({}, [], []))
                counts[StateType(state)] = n
                if first is not None:
                    starts.append(first)
                if last is not None:
                    ends.append(last)
        out = [
            TaskGroup(name, counts, min(starts) if starts else None, max(ends) if ends else None)
            for name, (counts, starts, ends) in groups.items()
        ]
        return sorted(out, key=lambda g: (g.first_started is None, g.first_started or 0, g.name))

    def task_edges(self, run_id: str) -> list[tuple[str, str]]:
        """The run's (upstream, downstream) dependencies between task names."""
        query = (
            select(task_edges.c.upstream, task_edges.c.downstream)
            .where(task_edges.c.run_id == run_id)
            .order_by(task_edges.c.upstream, task_edges.c.downstream)
        )
        with self.reader.connect() as conn:
            return [(up, down) for up, down in conn.execute(query)]

    def attempts(self, run_id: str, names: Iterable[str]) -> list[Attempt]:
        """Every attempt of the task runs of the given task names, from their histories."""
        wanted = list(names)
        if not wanted:
            return []
        query = (
            select(
                state_history.c.task_key,
                task_runs.c.task_name,
                state_history.c.to_state,
                state_history.c.time,
                state_history.c.attempt,
            )
            .join(
                task_runs,
                and_(
                    task_runs.c.run_id == state_history.c.run_id,
                    task_runs.c.task_key == state_history.c.task_key,
                ),
            )
            .where(state_history.c.run_id == run_id, task_runs.c.task_name.in_(wanted))
            .order_by(state_history.c.task_key, state_history.c.time, state_history.c.id)
        )
        per_key: dict[str, tuple[str, list[tuple[StateType, float, int]]]] = {}
        with self.reader.connect() as conn:
            for key, name, to_state, time, attempt in conn.execute(query):
                per_key.setdefault(key, (name, []))[1].append((StateType(to_state), time, attempt))
        out: list[Attempt] = []
        for key, (name, steps) in per_key.items():
            out.extend(attempts_of(logical(key), name, steps))  # users see logical keys
        return out


def _transition(row: object) -> Transition:
    m = row._mapping  # type: ignore[attr-defined]
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
