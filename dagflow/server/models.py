"""The API's bodies and responses: pydantic models, and how dagflow's values become them.

Times are ISO 8601 in UTC (`2026-12-02T10:00:00.123000Z`), durations seconds. A run is always
shown with its dagflow state (never Dask's), its task runs counted by state, and the link to its
page. These models are the API's contract (OpenAPI is generated from them); `dagflow.client`
reads them back into `dagflow.core` values.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dagflow.core.history import FlowSummary, HistoryStep, RunSummary
from dagflow.core.keys import logical
from dagflow.core.runs import FlowRun, LogEvent, TaskRun
from dagflow.core.states import StateType, Transition


def utc(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, timezone.utc)


class LogLevel(str, enum.Enum):
    """A log level by name, for filtering (a record at this level or above)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"

    @property
    def number(self) -> int:
        return int(logging.getLevelName(self.value))


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Health(Out):
    status: str = Field(description="`ok` when the server answers and its database does")
    version: str


class TransitionOut(Out):
    from_state: StateType | None
    to_state: StateType
    time: datetime
    attempt: int
    message: str

    @classmethod
    def of(cls, t: Transition) -> TransitionOut:
        return cls(
            from_state=t.from_state,
            to_state=t.to_state,
            time=utc(t.time),  # type: ignore[arg-type]
            attempt=t.attempt,
            message=t.message,
        )


class RunOut(Out):
    """A flow run as listings show it."""

    id: str
    flow: str
    flow_version: str | None
    state: StateType
    parameters: dict[str, Any]
    attempts: int
    started: datetime | None
    ended: datetime | None
    duration: float | None = Field(description="seconds, when the run has ended")
    error_type: str | None
    error: str | None
    parent_run_id: str | None
    cluster_address: str | None
    dashboard_link: str | None
    entrypoint: str | None
    deployment: str | None = Field(None, description="FLOW/NAME of the deployment that made it")
    scheduled_time: datetime | None = Field(None, description="its tick (or when it was asked)")
    origin: str | None = Field(None, description="schedule | backfill | manual | trigger")
    served_by: str | None = Field(None, description="the `dagflow serve` process that claimed it")
    late: bool = Field(False, description="not started within the grace period of its tick")
    event_id: str | None = Field(None, description="the event that started it (its why)")
    task_counts: dict[StateType, int] = Field(description="task runs by state")
    tasks: int
    failed_tasks: int
    url: str = Field(description="the run's page on this server")

    @classmethod
    def of(cls, summary: RunSummary) -> RunOut:
        run = summary.run
        return cls(
            id=run.id,
            flow=run.flow_name,
            flow_version=run.flow_version,
            state=run.state,
            parameters=run.parameters,
            attempts=run.attempts,
            started=utc(run.started),
            ended=utc(run.ended),
            duration=run.duration,
            error_type=run.error_type,
            error=run.error,
            parent_run_id=run.parent_run_id,
            cluster_address=run.cluster_address,
            dashboard_link=run.dashboard_link,
            entrypoint=run.entrypoint,
            deployment=run.deployment,
            scheduled_time=utc(run.scheduled_time),
            origin=run.origin,
            served_by=run.served_by,
            late=run.late,
            event_id=run.event_id,
            task_counts=dict(sorted(summary.task_counts.items())),
            tasks=summary.tasks,
            failed_tasks=summary.failed_tasks,
            url=f"/runs/{run.id}",
        )


class RunDetail(RunOut):
    """One run: what listings show, plus its own state history."""

    history: list[TransitionOut]

    @classmethod
    def of(cls, summary: RunSummary) -> RunDetail:
        base = RunOut.of(summary).model_dump()
        return cls(**base, history=[TransitionOut.of(t) for t in summary.run.history])


class RunPageOut(Out):
    runs: list[RunOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page")


class TaskRunOut(Out):
    key: str  # the logical key `task[n]`, the same in every attempt of the flow
    dask_key: str | None  # this execution's Dask key (`task-token[n]`)
    name: str
    map_index: int | None
    state: StateType
    attempts: int
    started: datetime | None
    ended: datetime | None
    duration: float | None
    worker: str | None
    error_type: str | None
    error: str | None
    traceback: str | None
    result_location: str | None
    result_size: int | None
    result_serializer: str | None
    cache_key: str | None
    history: list[TransitionOut]

    @classmethod
    def of(cls, t: TaskRun) -> TaskRunOut:
        return cls(
            key=t.key,
            dask_key=t.dask_key,
            name=t.name,
            map_index=t.map_index,
            state=t.state,
            attempts=t.attempts,
            started=utc(t.started),
            ended=utc(t.ended),
            duration=t.duration,
            worker=t.worker,
            error_type=t.error_type,
            error=t.error,
            traceback=t.traceback,
            result_location=t.result_location,
            result_size=t.result_size,
            result_serializer=t.result_serializer,
            cache_key=t.cache_key,
            history=[TransitionOut.of(h) for h in t.history],
        )


class TaskRunPageOut(Out):
    task_runs: list[TaskRunOut]
    total: int = Field(description="task runs matching the filter, in all")
    offset: int
    limit: int


class StepOut(Out):
    id: int
    task_key: str | None = Field(
        description="the task's logical key `task[n]`; null for the flow run's own transitions"
    )
    dask_key: str | None = Field(description="the Dask key of that execution of the task")
    from_state: StateType | None
    to_state: StateType
    time: datetime
    attempt: int
    message: str

    @classmethod
    def of(cls, step: HistoryStep) -> StepOut:
        t = step.transition
        return cls(
            id=step.id,
            task_key=logical(step.task_key) if step.task_key else None,
            dask_key=step.task_key,
            from_state=t.from_state,
            to_state=t.to_state,
            time=utc(t.time),  # type: ignore[arg-type]
            attempt=t.attempt,
            message=t.message,
        )


class HistoryOut(Out):
    steps: list[StepOut]
    next_after: int = Field(description="pass as `after` to read on")


class LogOut(Out):
    id: int
    task_key: str | None = Field(description="the task's logical key `task[n]`, null: the flow's")
    dask_key: str | None = Field(description="the Dask key of that execution of the task")
    task_name: str | None
    level: int
    level_name: str
    time: datetime
    worker: str | None
    message: str

    @classmethod
    def of(cls, row_id: int, ev: LogEvent) -> LogOut:
        return cls(
            id=row_id,
            task_key=logical(ev.task_key) if ev.task_key else None,
            dask_key=ev.task_key,
            task_name=ev.task_name,
            level=ev.level,
            level_name=logging.getLevelName(ev.level),
            time=utc(ev.time),  # type: ignore[arg-type]
            worker=ev.worker,
            message=ev.message,
        )


class LogPageOut(Out):
    logs: list[LogOut]
    next_after: int = Field(description="pass as `after` to read (or wait for) what follows")
    run_state: StateType
    done: bool = Field(description="the run has ended: no record will follow")


class ErrorOut(Out):
    """Why a run failed: its own error, and its failed task runs with their tracebacks."""

    state: StateType
    error_type: str | None
    error: str | None
    failed_tasks: list[TaskRunOut]
    failed_total: int


class ParametersOut(Out):
    parameters: dict[str, Any]


class FlowOut(Out):
    name: str
    version: str | None
    created: datetime
    runs: int
    last_run: datetime | None

    @classmethod
    def of(cls, f: FlowSummary) -> FlowOut:
        return cls(
            name=f.name,
            version=f.version,
            created=utc(f.created),  # type: ignore[arg-type]
            runs=f.runs,
            last_run=utc(f.last_run),
        )


class CancelOut(Out):
    id: str
    state: StateType = Field(description="CANCELLED, or CANCELLING until its driver stops it")


class ResumeOut(Out):
    id: str
    state: StateType = Field(description="the state it ended in (it keeps it until resumed)")
    resume_requested: datetime = Field(description="when the resume was asked")


def run_of(detail: RunDetail, tasks: list[TaskRunOut]) -> FlowRun:
    """A `FlowRun` value from the API's documents (what `dagflow.client` returns)."""
    run = FlowRun(
        id=detail.id,
        flow_name=detail.flow,
        parameters=dict(detail.parameters),
        flow_version=detail.flow_version,
        state=detail.state,
        started=_seconds(detail.started),
        ended=_seconds(detail.ended),
        attempts=detail.attempts,
        error=detail.error,
        error_type=detail.error_type,
        parent_run_id=detail.parent_run_id,
        dashboard_link=detail.dashboard_link,
        cluster_address=detail.cluster_address,
        entrypoint=detail.entrypoint,
        **_scheduling(detail),
    )
    run.history = [transition_of(t) for t in detail.history]
    for t in tasks:
        run.all_task_runs[t.dask_key or t.key] = TaskRun(
            key=t.key,
            dask_key=t.dask_key,
            name=t.name,
            map_index=t.map_index,
            state=t.state,
            attempts=t.attempts,
            started=_seconds(t.started),
            ended=_seconds(t.ended),
            worker=t.worker,
            error_type=t.error_type,
            error=t.error,
            traceback=t.traceback,
            result_location=t.result_location,
            result_size=t.result_size,
            result_serializer=t.result_serializer,
            cache_key=t.cache_key,
            history=[transition_of(h) for h in t.history],
        )
    return run


def transition_of(t: TransitionOut) -> Transition:
    return Transition(t.from_state, t.to_state, t.time.timestamp(), t.attempt, t.message)


def summary_of(out: RunOut) -> RunSummary:
    run = FlowRun(
        id=out.id,
        flow_name=out.flow,
        parameters=dict(out.parameters),
        flow_version=out.flow_version,
        state=out.state,
        started=_seconds(out.started),
        ended=_seconds(out.ended),
        attempts=out.attempts,
        error=out.error,
        error_type=out.error_type,
        parent_run_id=out.parent_run_id,
        dashboard_link=out.dashboard_link,
        cluster_address=out.cluster_address,
        entrypoint=out.entrypoint,
        **_scheduling(out),
    )
    return RunSummary(run, dict(out.task_counts))


def _scheduling(out: RunOut) -> dict[str, Any]:
    return {
        "deployment": out.deployment,
        "scheduled_time": _seconds(out.scheduled_time),
        "origin": out.origin,
        "served_by": out.served_by,
        "late": out.late,
        "event_id": out.event_id,
    }


def log_of(run_id: str, out: LogOut) -> LogEvent:
    return LogEvent(
        run_id,
        out.dask_key or out.task_key,
        out.task_name,
        out.level,
        out.time.timestamp(),
        out.message,
        out.worker,
    )


def _seconds(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()
