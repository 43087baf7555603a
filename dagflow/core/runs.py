"""Value objects for runs and the event stream the engine emits about them.

The engine turns what happens on the cluster into a stream of frozen events, in order:
`FlowRunStarted` once, then `StateEvent`s (flow and task transitions) and `LogEvent`s, ending
with the flow's final `StateEvent`. A store consumes the stream in batches; an event's `ident`
is stable, so an event delivered twice can be recorded once.

`TaskRun` and `FlowRun` are what users read: the same types whether a run just finished in this
process or was loaded from the store later.
"""

from __future__ import annotations

import reprlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

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


RunEvent = FlowRunStarted | StateEvent | LogEvent


@dataclass(slots=True)
class TaskRun:
    """What is known about one task run: its state, attempts, times, error and history."""

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
    history: list[Transition] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

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
        if event.cache_key:
            self.cache_key = event.cache_key


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
    origin: str | None = None  # schedule | backfill | manual (None: started directly)
    served_by: str | None = None  # the `dagflow serve` process that claimed it
    late: bool = False  # not started within the grace period after `scheduled_time`
    task_runs: dict[str, TaskRun] = field(default_factory=dict)
    history: list[Transition] = field(default_factory=list)
    log_records: list[LogEvent] = field(default_factory=list)
    subflow_runs: list[FlowRun] = field(default_factory=list)
    _value: Any = None
    _has_value: bool = False
    _exception: BaseException | None = None
    _log_loader: Callable[[], list[LogEvent]] | None = None

    @property
    def duration(self) -> float | None:
        if self.started is None or self.ended is None:
            return None
        return self.ended - self.started

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
            raise FlowFailed(
                f"flow run {self.id} completed but its return value was not kept", run_id=self.id
            )
        return self._value

    def logs(self) -> list[LogEvent]:
        """Every log record of the run, in time order."""
        if self._log_loader is not None:
            return self._log_loader()
        return list(self.log_records)

    def counts(self) -> dict[StateType, int]:
        """How many task runs are in each state."""
        out: dict[StateType, int] = {}
        for tr in self.task_runs.values():
            out[tr.state] = out.get(tr.state, 0) + 1
        return out

    def tasks_named(self, name: str) -> list[TaskRun]:
        return [tr for tr in self.task_runs.values() if tr.name == name]

    def iter_failures(self) -> Iterator[TaskRun]:
        return (tr for tr in self.task_runs.values() if tr.state.is_failure)

    def __repr__(self) -> str:
        value = f", result={_short.repr(self._value)}" if self._has_value else ""
        return (
            f"FlowRun(id={self.id!r}, flow={self.flow_name!r}, state={self.state}, "
            f"tasks={len(self.task_runs)}{value})"
        )
