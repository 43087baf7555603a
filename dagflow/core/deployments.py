"""`Deployment`: a flow, its default parameters, its schedules and where and how it runs.

A deployment is named `flow/name` (its `full_name`, unique: the name is unique per flow). It is a
frozen value, built the same way whether it came from Python (`flow.to_deployment`), the command
line or a YAML file, and checked here once: a bad field raises `DeploymentError` naming the
deployment and the field. Its parameters are checked against the flow's schema by whoever has the
flow loaded (`dagflow.scheduler.definitions`); this module never imports user code.

`idempotency_key(instant)` is the identity of one tick: a run for it is created once, however many
schedulers, restarts or retried transactions ask (the store holds the key under a unique index).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dagflow.core.schedules import Schedule, merged_ticks, next_fire
from dagflow.core.triggers import Trigger, check_names
from dagflow.errors import DeploymentError

_NAME = re.compile(r"^[^/\s][^/]*$")


@dataclass(frozen=True, slots=True)
class Deployment:
    """A flow made runnable on schedules and triggers: see the module docstring."""

    name: str
    flow_name: str
    entrypoint: str  # path/file.py:flow or package.module:flow
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedules: tuple[Schedule, ...] = ()
    cluster: str | None = None  # a cluster name, profile or address; None: the flow's / local
    tags: tuple[str, ...] = ()
    description: str | None = None
    paused: bool = False
    max_active_runs: int = 1
    catchup: bool = False
    triggers: tuple[Trigger, ...] = ()  # events that start runs (`core/triggers.py`)

    def __post_init__(self) -> None:
        who = f"deployment {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name) or len(self.name) > 200:
            raise DeploymentError(
                f"{who}: name: must be non-empty text without '/' (at most 200 characters)"
            )
        if not isinstance(self.entrypoint, str) or ":" not in self.entrypoint:
            raise DeploymentError(
                f"deployment {self.full_name!r}: entrypoint: expected path/file.py:flow or "
                f"package.module:flow, got {self.entrypoint!r}"
            )
        who = f"deployment {self.full_name!r}"
        if not isinstance(self.parameters, Mapping):
            raise DeploymentError(f"{who}: parameters: expected a mapping of names to values")
        object.__setattr__(self, "parameters", dict(self.parameters))
        object.__setattr__(self, "schedules", tuple(self.schedules))
        object.__setattr__(self, "triggers", tuple(self.triggers))
        check_names(self.triggers, who)
        tags = (self.tags,) if isinstance(self.tags, str) else tuple(self.tags)
        if not all(isinstance(t, str) and t for t in tags):
            raise DeploymentError(f"{who}: tags: expected a list of non-empty strings")
        object.__setattr__(self, "tags", tags)
        if self.cluster is not None and (not isinstance(self.cluster, str) or not self.cluster):
            raise DeploymentError(f"{who}: cluster: expected a cluster name or address")
        mar = self.max_active_runs
        if isinstance(mar, bool) or not isinstance(mar, int) or mar < 1:
            raise DeploymentError(f"{who}: max_active_runs: must be an integer >= 1, got {mar!r}")
        for flag in ("paused", "catchup"):
            if not isinstance(getattr(self, flag), bool):
                raise DeploymentError(f"{who}: {flag}: expected true or false")

    @property
    def full_name(self) -> str:
        """`flow/name`, how the CLI and the store name the deployment."""
        return f"{self.flow_name}/{self.name}"

    def idempotency_key(self, instant: float) -> str:
        """The identity of the tick at `instant` (microsecond precision)."""
        return tick_key(self.full_name, instant)

    def ticks(self, after: float, until: float, limit: int | None = None) -> list[float]:
        """Its schedules' fire times in (`after`, `until`], oldest first, each instant once."""
        return merged_ticks(self.schedules, after, until, limit)

    def next_fire(self, after: float) -> float | None:
        return next_fire(self.schedules, after)

    def schedule_specs(self) -> list[dict[str, Any]]:
        return [s.spec() for s in self.schedules]

    def trigger_specs(self) -> list[dict[str, Any]]:
        return [t.spec() for t in self.triggers]

    def trigger(self, name: str) -> Trigger | None:
        """Its trigger named `name`, if it has one."""
        return next((t for t in self.triggers if t.name == name), None)


def tick_key(full_name: str, instant: float) -> str:
    """`schedule:flow/name@<microseconds since the epoch>`: one tick of one deployment."""
    return f"schedule:{full_name}@{round(instant * 1_000_000)}"


def split_full_name(ref: str) -> tuple[str, str]:
    """`flow/name` into its two parts; `DeploymentError` if it is not of that form."""
    flow, slash, name = ref.strip().partition("/")
    if not slash or not flow or not name or "/" in name:
        raise DeploymentError(f"deployment {ref!r}: expected FLOW/NAME, e.g. etl/nightly")
    return flow, name
