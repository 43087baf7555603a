"""Folding a stretch of the event stream into the rows of one write transaction.

A `Batch` is what the writer commits at once: the runs that started, every transition (history
rows), every log record, and, per task run and per flow run, one folded delta holding the latest
state, so that the transaction touches each task run row once however many events it saw. Folding
mirrors `TaskRun.apply`: latest state wins, attempts only grow, `started` is the first RUNNING,
errors are kept from the last failure.

`Seen` drops events already folded (an event delivered twice is recorded once); the database's
unique constraints catch what memory has forgotten.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from dagflow.core.keys import attempt_of, logical_of, parse_key, slug_of
from dagflow.core.runs import FlowRunStarted, LogEvent, RunEvent, StateEvent, TaskEdges, TaskRun
from dagflow.core.states import StateType
from dagflow.store.encoding import log_ident
from dagflow.store.schema import FLOW_LEVEL

TASK_COLUMNS = (
    "run_id",
    "task_key",
    "task_name",
    "map_index",
    "state",
    "attempts",
    "started",
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
HISTORY_COLUMNS = ("run_id", "task_key", "from_state", "to_state", "time", "attempt", "message")
EDGE_COLUMNS = ("run_id", "upstream", "downstream")
LOG_COLUMNS = ("run_id", "task_key", "task_name", "level", "time", "worker", "message", "ident")
History = tuple[str, str, str | None, str, float, int, str]
Log = tuple[str, str | None, str | None, int, float, str | None, str, str]


@dataclass(slots=True)
class TaskDelta:
    """The folded effect of a batch's events on one task run row (folded as `TaskRun.fold`)."""

    run_id: str
    task: TaskRun

    def apply(self, ev: StateEvent) -> None:
        self.task.fold(ev)

    def row(self) -> tuple[Any, ...]:
        """The task run's values in `TASK_COLUMNS` order."""
        t = self.task
        return (
            self.run_id,
            t.dask_key,
            t.name,
            t.map_index,
            t.state.value,
            t.attempts,
            t.started,
            t.ended,
            t.worker,
            t.error_type,
            t.error,
            t.traceback,
            t.result_location,
            t.result_size,
            t.result_serializer,
            t.cache_key,
            t.result_identity,
        )


@dataclass(slots=True)
class RunDelta:
    """The folded effect of a batch's flow-level events on one flow run row."""

    run_id: str
    state: str
    attempts: int = 0
    ended: float | None = None
    error: str | None = None
    error_type: str | None = None
    final: bool = False
    result_location: str | None = None
    result_serializer: str | None = None

    def apply(self, ev: StateEvent) -> None:
        self.state = ev.to_state.value
        self.attempts = max(self.attempts, ev.attempt)
        self.final = ev.to_state.is_final
        # A run that is active again (resumed) has no end and no error yet.
        self.ended = ev.time if self.final else None
        failed = self.final and not ev.to_state.is_success
        self.error = (ev.message or None) if failed else None
        self.error_type = ev.error_type if failed else None
        if ev.result_location:
            self.result_location = ev.result_location
            self.result_serializer = ev.result_serializer


@dataclass(slots=True)
class Batch:
    """Events folded for one transaction; `size` counts every event consumed, duplicates too."""

    started: dict[str, FlowRunStarted] = field(default_factory=dict)
    runs: dict[str, RunDelta] = field(default_factory=dict)
    tasks: dict[tuple[str, str], TaskDelta] = field(default_factory=dict)
    history: list[History] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    superseding: list[tuple[str, str, str]] = field(default_factory=list)  # run, LIKE, new key
    size: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.started or self.runs or self.tasks or self.history or self.logs or self.edges
        )

    def run_ids(self) -> set[str]:
        ids = set(self.started) | set(self.runs)
        ids.update(run_id for run_id, _ in self.tasks)
        ids.update(row[0] for row in self.logs)
        ids.update(row[0] for row in self.edges)
        return ids

    def add(self, ev: RunEvent) -> None:
        if isinstance(ev, StateEvent):
            self._state(ev)
        elif isinstance(ev, LogEvent):
            self._log(ev)
        elif isinstance(ev, FlowRunStarted):
            self.started.setdefault(ev.run_id, ev)
        elif isinstance(ev, TaskEdges):
            self.edges.update((ev.run_id, up, down) for up, down in ev.edges)

    def _state(self, ev: StateEvent) -> None:
        self.history.append(
            (
                ev.run_id,
                ev.task_key if ev.task_key is not None else FLOW_LEVEL,
                ev.from_state.value if ev.from_state is not None else None,
                ev.to_state.value,
                ev.time,
                ev.attempt,
                ev.message or "",
            )
        )
        if ev.task_key is None:
            delta = self.runs.get(ev.run_id)
            if delta is None:
                delta = self.runs[ev.run_id] = RunDelta(ev.run_id, ev.to_state.value)
            delta.apply(ev)
            return
        key = (ev.run_id, ev.task_key)
        task = self.tasks.get(key)
        if ev.from_state is None:
            self._supersede(ev.run_id, ev.task_key)
        if task is None:
            name, index = parse_key(ev.task_key)
            row = TaskRun(
                logical_of(name, index), ev.task_name or slug_of(name), dask_key=ev.task_key
            )
            task = self.tasks[key] = TaskDelta(ev.run_id, row)
        task.apply(ev)

    def _supersede(self, run_id: str, task_key: str) -> None:
        """A call run again by a later flow attempt: its earlier rows are no longer the latest."""
        name, index = parse_key(task_key)
        if attempt_of(name) > 1:
            like = slug_of(name).replace("_", "\\_") + f"-%[{index}]"
            self.superseding.append((run_id, like, task_key))

    def _log(self, ev: LogEvent) -> None:
        self.logs.append(
            (
                ev.run_id,
                ev.task_key,
                ev.task_name,
                ev.level,
                ev.time,
                ev.worker,
                ev.message,
                log_ident(ev.task_key, ev.time, ev.message),
            )
        )

    def drop_runs(self, run_ids: set[str]) -> int:
        """Remove every row of `run_ids` (runs with no row and no start); returns rows dropped."""
        before = len(self.history) + len(self.logs) + len(self.tasks) + len(self.runs)
        self.edges = {e for e in self.edges if e[0] not in run_ids}
        self.history = [r for r in self.history if r[0] not in run_ids]
        self.logs = [r for r in self.logs if r[0] not in run_ids]
        self.tasks = {k: v for k, v in self.tasks.items() if k[0] not in run_ids}
        self.runs = {k: v for k, v in self.runs.items() if k not in run_ids}
        self.superseding = [s for s in self.superseding if s[0] not in run_ids]
        return before - (len(self.history) + len(self.logs) + len(self.tasks) + len(self.runs))


class Seen:
    """Identities of events already folded, per run; finished runs are forgotten oldest first."""

    def __init__(self, keep_finished: int = 64) -> None:
        self._active: dict[str, set[Any]] = {}
        self._finished: OrderedDict[str, set[Any]] = OrderedDict()
        self._keep = keep_finished

    def first_time(self, ev: RunEvent) -> bool:
        """True the first time an event is seen (the database de-duplicates logs and edges)."""
        if type(ev) is LogEvent or type(ev) is TaskEdges:
            return True
        ident: Any = ev.ident if isinstance(ev, StateEvent) else ("started",)
        if (
            isinstance(ev, StateEvent)
            and ev.task_key is None
            and StateType.PAUSED
            in (
                ev.from_state,
                ev.to_state,
            )
        ):
            # A flow pauses and goes on within one attempt, maybe more than once: each change
            # of the run's state counts (the history table keeps the first of each kind).
            ident = (*ident, ev.time)
        seen = self._active.get(ev.run_id)
        if seen is None:
            seen = self._finished.get(ev.run_id)
            if seen is None:
                seen = self._active[ev.run_id] = set()
        if ident in seen:
            return False
        seen.add(ident)
        return True

    def finished(self, run_id: str) -> None:
        seen = self._active.pop(run_id, None)
        if seen is None:
            return
        self._finished[run_id] = seen
        while len(self._finished) > self._keep:
            self._finished.popitem(last=False)
