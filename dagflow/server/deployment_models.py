"""The deployments API's bodies and responses (pydantic), and how the store's values become them.

A deployment is shown as `dagflow deployments show --json` shows it (same field names), plus
its schedules in words, its next fire times and, on its own page, its parameter schema (the
JSON schema of the flow's signature, which the Run form is generated from). `dagflow.client`
reads these back into the store's `DeploymentInfo` values, so the remote CLI prints what the
local one does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from dagflow.core.deployments import Deployment
from dagflow.core.schedules import Schedule
from dagflow.core.states import StateType
from dagflow.server.models import Out, utc


class ScheduleOut(Out):
    kind: str = Field(description="cron | interval")
    spec: dict[str, Any] = Field(description="as `dagflow deployments show --json` gives it")
    words: str = Field(description="the schedule in words")

    @classmethod
    def of(cls, schedule: Schedule) -> ScheduleOut:
        from dagflow.server.schedule_words import in_words

        return cls(kind=schedule.kind, spec=schedule.spec(), words=in_words(schedule))


class LastRunOut(Out):
    id: str
    state: StateType


class DeploymentOut(Out):
    """A registered deployment, as listings show it."""

    name: str = Field(description="FLOW/NAME")
    flow: str
    deployment: str
    entrypoint: str
    parameters: dict[str, Any] = Field(description="the default parameters of its runs")
    schedules: list[ScheduleOut]
    cluster: str | None
    tags: list[str]
    description: str | None
    paused: bool
    max_active_runs: int
    catchup: bool
    created: datetime
    updated: datetime
    next_run: datetime | None = Field(description="the earliest SCHEDULED run's tick")
    last_run: LastRunOut | None = Field(description="the latest run that started")
    next_ticks: list[datetime] = Field(
        description="its schedules' next fire times (none while paused)"
    )

    @classmethod
    def fields_of(cls, info: Any, now: float) -> dict[str, Any]:
        from dagflow.server.schedule_words import next_ticks

        dep: Deployment = info.deployment
        last = None
        if info.last_run_id and info.last_run_state:
            last = LastRunOut(id=info.last_run_id, state=info.last_run_state)
        return {
            "name": dep.full_name,
            "flow": dep.flow_name,
            "deployment": dep.name,
            "entrypoint": dep.entrypoint,
            "parameters": dict(dep.parameters),
            "schedules": [ScheduleOut.of(s) for s in dep.schedules],
            "cluster": dep.cluster,
            "tags": list(dep.tags),
            "description": dep.description,
            "paused": dep.paused,
            "max_active_runs": dep.max_active_runs,
            "catchup": dep.catchup,
            "created": utc(info.created),
            "updated": utc(info.updated),
            "next_run": utc(info.next_run),
            "last_run": last,
            "next_ticks": [] if dep.paused else [utc(t) for t in next_ticks(dep, now)],
        }

    @classmethod
    def of(cls, info: Any, now: float) -> DeploymentOut:
        return cls(**cls.fields_of(info, now))


class DeploymentDetail(DeploymentOut):
    """One deployment, with what its Run form is generated from."""

    parameter_schema: dict[str, Any] | None = Field(
        description="JSON schema of the flow's parameters (None if its file cannot be loaded)"
    )
    schema_error: str | None = Field(description="why the flow could not be loaded here")


class RunRequestIn(BaseModel):
    """Parameters of a deployment's run, over its defaults. Both forms may be given; the
    `NAME=VALUE` pairs win, as `--param` wins over `--params-json` on the command line."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(
        default_factory=dict, description="JSON values by parameter name"
    )
    params: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="`NAME=VALUE` text, coerced by each parameter's type (as `--param`)",
    )


class RunCreatedOut(Out):
    id: str
    deployment: str
    state: StateType
    parameters: dict[str, Any]
