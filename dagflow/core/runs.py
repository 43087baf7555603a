"""Value objects for runs and the event stream the engine emits about them.

The engine turns what happens on the cluster into a stream of frozen events, in order:
`FlowRunStarted` once, then `StateEvent`s (flow and task transitions), `LogEvent`s and, when a
wave adds dependencies between task names, `TaskEdges`, ending with the flow's final
`StateEvent`. A store consumes the stream in batches; an event's `ident` is stable, so an event
delivered twice can be recorded once.

`TaskRun` and `FlowRun` are what users read: the same types whether a run just finished in this
process or was loaded from the store later. A task run is named by its logical key `task[n]`
(the n-th call of that task in the run), the same in every attempt of the flow; each execution in
a flow attempt (a retry of the flow, a resume) is a row of its own, with its own Dask key, and
`FlowRun.task_runs` shows each task's latest one.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from dagflow.core.keys import attempt_of, parse_key
from dagflow.core.states import StateType, Transition
from dagflow.errors import FlowCancelled, FlowFailed


@dataclass(frozen=True, slots=True)
class FlowRunStarted:
    """A flow run came into being; carries what the store keeps about it."""

    run_id: str
    flow_name: str
    flow_version: str | None
    parameters: dict[str, Any]
    time: float
    parent_run_id: str | None = None
    parent_task_key: str | None = None
    cluster_address: str | None = None
    dashboard_link: str | None = None
    entrypoint: str | None = None  # "path/to/file.py:flow_function", for `dagflow resume`


@dataclass(frozen=True, slots=True)
class StateEvent:
    """One transition of a flow run (`task_key` is None) or of one of its task runs."""

    run_id: str
    task_key: str | None
    from_state: StateType | None
    to_state: StateType
    time: float
    attempt: int = 0
    message: str = ""
    task_name: str | None = None
    map_index: int | None = None
    worker: str | None = None
    error_type: str | None = None
    traceback: str | None = None
    result_location: str | None = None
    result_size: int | None = None
    result_serializer: str | None = None
    cache_key: str | None = None
    result_identity: str | None = None  # what the result was computed from (code and inputs)

    @property
    def ident(self) -> tuple[str, str | None, int, StateType]:
        """Identity for de-duplication: one record per (run, task, attempt, target state)."""
        return (self.run_id, self.task_key, self.attempt, self.to_state)


@dataclass(frozen=True, slots=True)
class LogEvent:
    """A log record emitted by a flow body or a task, wherever it ran."""

    run_id: str
    task_key: str | None
    task_name: str | None
    level: int
    time: float
    message: str
    worker: str | None = None

    @property
    def ident(self) -> tuple[str, str | None, float, str]:
        return (self.run_id, self.task_key, self.time, self.message)


@dataclass(frozen=True, slots=True)
class TaskEdges:
    """Dependencies between task names found in a wave: `(upstream, downstream)` pairs.

    Name-level (a 10,000-item map over another map is one edge), emitted once per new pair, so
    the pages can draw a run's task graph after the cluster is gone.
    """

    run_id: str
    edges: tuple[tuple[str, str], ...]


RunEvent = FlowRunStarted | StateEvent | LogEvent | TaskEdges


@dataclass(slots=True)
class TaskRun:
    """What is known about one task run: its state, attempts, times, error and history.

    `key` is the logical key `task[n]`; `dask_key` the Dask key of the flow attempt it ran in.
    """

    key: str
    name: str
    map_index: int | None = None
    state: StateType = StateType.PENDING
    attempts: int = 0
    started: float | None = None
    ended: float | None = None
    worker: str | None = None
    error_type: str | None = None
    error: str | None = None
    traceback: str | None = None
    result_location: str | None = None
    result_size: int | None = None
    result_serializer: str | None = None
    cache_key: str | None = None
    result_identity: str | None = None
    history: list[Transition] = field(default_factory=list)
    dask_key: str | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    @property
    def flow_attempt(self) -> int:
        """The attempt of the flow this execution belongs to (0 if unknown)."""
        return attempt_of(parse_key(self.dask_key)[0]) if self.dask_key else 0

    def apply(self, event: StateEvent) -> None:
        """Record one of this task run's events (the engine checks legality first)."""
        self.history.append(
            Transition(event.from_state, event.to_state, event.time, event.attempt, event.message)
        )
        self.fold(event)

    def fold(self, event: StateEvent) -> None:
        """Update the task run's fields from an event, without its history (the store's rows)."""
        self.state = event.to_state
        self.attempts = max(self.attempts, event.attempt)
        if event.task_name:
            self.name = event.task_name
        if event.map_index is not None:
            self.map_index = event.map_index
        if event.worker:
            self.worker = event.worker
        if event.to_state is StateType.RUNNING and self.started is None:
            self.started = event.time
        if event.to_state.is_final:
            self.ended = event.time
            if event.to_state.is_failure:
                self.error_type = event.error_type
                self.error = event.message
                self.traceback = event.traceback
        if event.result_location:
            self.result_location = event.result_location
            self.result_size = event.result_size
            self.result_serializer = event.result_serializer
            self.result_identity = event.result_identity
        if event.cache_key:
            self.cache_key = event.cache_key


class TaskRuns(Sequence[TaskRun]):
    """A run's task runs: one per task call (the latest flow attempt's), in call order.

    Iterate it for `TaskRun`s, index it by position, or look one up by its key:
    `run.task_runs["extract[3]"]` (a Dask key such as `extract-ab12cd341[3]` finds that
    attempt's row). `attempts(key)` gives every flow attempt's row of one task, oldest first.
    """

    __slots__ = ("_all", "_by_key", "_latest")

    def __init__(self, rows: Iterable[TaskRun]) -> None:
        self._all = list(rows)
        latest: dict[str, TaskRun] = {}
        for tr in self._all:
            old = latest.get(tr.key)
            if old is None or tr.flow_attempt >= old.flow_attempt:
                latest[tr.key] = tr
        self._by_key = latest
        self._latest = list(latest.values())

    @overload
    def __getitem__(self, item: int) -> TaskRun: ...

    @overload
    def __getitem__(self, item: slice) -> Sequence[TaskRun]: ...

    @overload
    def __getitem__(self, item: str) -> TaskRun: ...

    def __getitem__(self, item: int | slice | str) -> TaskRun | Sequence[TaskRun]:
        if isinstance(item, str):
            found = self.get(item)
            if found is None:
                raise KeyError(item)
            return found
        return self._latest[item]

    def __len__(self) -> int:
        return len(self._latest)

    def __iter__(self) -> Iterator[TaskRun]:
        return iter(self._latest)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, TaskRun):
            return any(item is tr for tr in self._latest)
        return isinstance(item, str) and self.get(item) is not None

    def get(self, key: str, default: TaskRun | None = None) -> TaskRun | None:
        """The task run with logical key `key` (or the row with that Dask key)."""
        found = self._by_key.get(key)
        if found is not None:
            return found
        return next((tr for tr in self._all if tr.dask_key == key), default)

    def keys(self) -> list[str]:
        return list(self._by_key)

    def values(self) -> list[TaskRun]:
        return list(self._latest)

    def items(self) -> list[tuple[str, TaskRun]]:
        return list(self._by_key.items())

    def attempts(self, key: str) -> list[TaskRun]:
        """Every flow attempt's execution of the task `key`, oldest first."""
        rows = [tr for tr in self._all if tr.key == key]
        return sorted(rows, key=lambda tr: tr.flow_attempt)

    def every_attempt(self) -> list[TaskRun]:
        """Every row, of every flow attempt, in the order they were made."""
        return list(self._all)

    def __repr__(self) -> str:
        return f"TaskRuns({len(self._latest)} tasks, {len(self._all)} rows)"


_RUNNING_STATES = frozenset({StateType.RUNNING, StateType.RETRYING, StateType.CANCELLING})

_short = reprlib.Repr()
_short.maxstring = 120
_short.maxother = 120


@dataclass(slots=True)
class FlowRun:
    """One run of a flow: its id, state, parameters, task runs, logs and (if kept) its result."""

    id: str
    flow_name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    flow_version: str | None = None
    state: StateType = StateType.PENDING
    started: float | None = None
    ended: float | None = None
    attempts: int = 0
    error: str | None = None
    error_type: str | None = None
    parent_run_id: str | None = None
    dashboard_link: str | None = None
    cluster_address: str | None = None
    entrypoint: str | None = None
    deployment: str | None = None  # flow/name of the deployment that created the run
    scheduled_time: float | None = None  # its tick (or when a manual run was asked for)
    origin: str | None = None  # schedule | backfill | manual | trigger (None: started directly)
    event_id: str | None = None  # the event that started it (`dagflow events ls`)
    served_by: str | None = None  # the `dagflow serve` process that claimed it
    late: bool = False  # not started within the grace period after `scheduled_time`
    result_location: str | None = None  # the persisted return value (`persist_results=True`)
    result_serializer: str | None = None
    all_task_runs: dict[str, TaskRun] = field(default_factory=dict)  # by Dask key, every attempt
    history: list[Transition] = field(default_factory=list)
    log_records: list[LogEvent] = field(default_factory=list)
    subflow_runs: list[FlowRun] = field(default_factory=list)
    _value: Any = None
    _has_value: bool = False
    _exception: BaseException | None = None
    _log_loader: Callable[[], list[LogEvent]] | None = None
    _result_loader: Callable[[str, str], Any] | None = None  # reads a persisted value

    @property
    def duration(self) -> float | None:
        """Wall time from the run's first start to its end (across crashes and resumes)."""
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

    @property
    def task_runs(self) -> TaskRuns:
        """Each task call's latest execution (see `TaskRuns`)."""
        return TaskRuns(self.all_task_runs.values())

    def running_time(self, now: float | None = None) -> float | None:
        """Seconds the run spent running (RUNNING, RETRYING, CANCELLING), summed over its flow
        attempts and resumes: the time between a crash or a failure and a resume is not
        counted. A run still active counts up to `now` when given. From `history`; without
        one (not loaded), the wall time `duration`."""
        if not self.history:
            return self.duration
        total, since = 0.0, None
        for step in self.history:
            if since is not None:
                total += max(0.0, step.time - since)
            since = step.time if step.to_state in _RUNNING_STATES else None
        if since is not None:  # still running
            if now is None:
                return None
            total += max(0.0, now - since)
        ran = any(step.to_state in _RUNNING_STATES for step in self.history)
        return total if ran else None

    def result(self) -> Any:
        """The flow's return value; raises `FlowFailed` / `FlowCancelled` if it did not complete."""
        if self.state is StateType.CANCELLED:
            raise FlowCancelled(f"flow run {self.id} was cancelled", run_id=self.id)
        if not self.state.is_success:
            if self._exception is not None:
                raise self._exception
            raise FlowFailed(
                f"flow run {self.id} ended {self.state}: {self.error or 'no error recorded'}",
                run_id=self.id,
            )
        if not self._has_value:
            if self.result_location and self._result_loader is not None:
                self._value = self._result_loader(
                    self.result_location, self.result_serializer or "cloudpickle"
                )
                self._has_value = True
                return self._value
            raise FlowFailed(
                f"flow run {self.id} completed but its return value was not kept "
                "(@flow(persist_results=True) keeps it)",
                run_id=self.id,
            )
        return self._value

    def logs(self) -> list[LogEvent]:
        """Every log record of the run, in time order."""
        if self._log_loader is not None:
            return self._log_loader()
        return list(self.log_records)

    def counts(self) -> dict[StateType, int]:
        """How many task runs (latest executions) are in each state."""
        out: dict[StateType, int] = {}
        for tr in self.task_runs:
            out[tr.state] = out.get(tr.state, 0) + 1
        return out

    def tasks_named(self, name: str) -> list[TaskRun]:
        return [tr for tr in self.task_runs if tr.name == name]

    def iter_failures(self) -> Iterator[TaskRun]:
        return (tr for tr in self.task_runs if tr.state.is_failure)

    def __repr__(self) -> str:
        value = f", result={_short.repr(self._value)}" if self._has_value else ""
        return (
            f"FlowRun(id={self.id!r}, flow={self.flow_name!r}, state={self.state}, "
            f"tasks={len(self.task_runs)}{value})"
        )
