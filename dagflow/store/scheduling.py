"""The Store's scheduling methods: deployments, scheduled runs and the events of triggers.

A mixin of `Store` (`store/__init__.py`), kept apart so that the facade stays readable: each
method is a thin call into the row module that owns its SQL (`deployments.py`, `ticks.py`,
`control.py`, `events.py`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Engine

from dagflow.core.deployments import Deployment
from dagflow.core.events import Event
from dagflow.errors import StoreError
from dagflow.store import control, ticks
from dagflow.store import deployments as deployment_rows
from dagflow.store import events as event_rows
from dagflow.store.deployments import DeploymentInfo
from dagflow.store.events import EventRecord, Fired, Render, TriggerPosition
from dagflow.store.reader import Reader
from dagflow.store.ticks import Claimed, NewRun


class SchedulingMethods:
    """Deployments registered and paused, their runs created and claimed, events fired."""

    engine: Engine
    reader: Reader

    # ------------------------------------------------------------------ deployments

    def save_deployments(self, items: Sequence[Deployment]) -> list[str]:
        """Register deployments (upsert by `flow/name`); returns those whose schedules changed.

        A changed deployment's future, unclaimed ticks are deleted: new ones follow.
        """
        now = time.time()
        changed = deployment_rows.save(self.engine, list(items), now)
        if changed:
            deployment_rows.unschedule(self.engine, changed, now, "schedule")
        return changed

    def deployments(self, refs: Sequence[str] | None = None) -> list[DeploymentInfo]:
        """Registered deployments (all, or those named), with their next and last runs."""
        with self.reader.connect() as conn:
            ids = None if refs is None else [deployment_rows.resolve(conn, r) for r in refs]
            return deployment_rows.infos(conn, ids)

    def deployment(self, ref: str) -> Deployment:
        """One registered deployment by `flow/name` (or a name unique across flows)."""
        return self.deployments([ref])[0].deployment

    def deployment_rows(self, ids: Sequence[str]) -> dict[str, Deployment]:
        """The registered deployments among `ids` (full names), in one query."""
        with self.reader.connect() as conn:
            return {k: dep for k, (dep, _) in deployment_rows.load(conn, list(ids)).items()}

    def set_paused(self, ref: str, paused: bool) -> str:
        """Pause (its upcoming ticks are dropped, none are created) or resume a deployment."""
        full = deployment_rows.set_paused(self.engine, ref, paused)
        if paused:
            deployment_rows.unschedule(self.engine, [full], time.time(), "schedule")
        return full

    def remove_deployment(self, ref: str) -> str:
        """Forget a deployment; its runs not started yet are dropped, the others stay."""
        full = deployment_rows.remove(self.engine, ref)
        deployment_rows.unschedule(self.engine, [full], None, None)
        return full

    # ------------------------------------------------------------------ scheduled runs

    def create_runs(self, runs: Sequence[NewRun]) -> list[str]:
        """Insert SCHEDULED runs, each once per idempotency key; returns the ids created."""
        return ticks.create_runs(self.engine, runs, time.time())

    def last_ticks(self, deployment_ids: list[str]) -> dict[str, float]:
        return ticks.last_ticks(self.engine, deployment_ids)

    def skip_missed(self, now: float) -> list[str]:
        return ticks.skip_missed(self.engine, now)

    def claim_due(
        self,
        served_by: str,
        now: float,
        capacity: int,
        reclaim_after: float = 60.0,
        deployment_ids: Sequence[str] | None = None,
    ) -> list[Claimed]:
        """Claim up to `capacity` due runs (of `deployment_ids` only, when given)."""
        return ticks.claim_due(self.engine, served_by, now, capacity, reclaim_after, deployment_ids)

    def take_run(self, run_id: str, served_by: str) -> bool:
        return ticks.take(self.engine, run_id, served_by, time.time())

    def fail_unstarted(self, run_id: str, served_by: str, message: str, error_type: str) -> bool:
        return ticks.fail_unstarted(
            self.engine, run_id, served_by, message, error_type, time.time()
        )

    def release_claims(self, served_by: str) -> int:
        return ticks.release_claims(self.engine, served_by)

    def cancel_requests(self, run_ids: Sequence[str]) -> list[str]:
        return ticks.cancel_requests(self.engine, run_ids)

    def claim_resumes(
        self, served_by: str, now: float, capacity: int, deployment_ids: Sequence[str]
    ) -> list[Claimed]:
        """Claim up to `capacity` runs of `deployment_ids` queued for resuming."""
        return control.claim_resumes(self.engine, served_by, now, capacity, deployment_ids)

    def give_back_resume(self, run_id: str, served_by: str) -> bool:
        return control.give_back_resume(self.engine, run_id, served_by, time.time())

    # ------------------------------------------------------------------ events of triggers

    def fire(
        self,
        deployment: Deployment,
        trigger: str,
        groups: Sequence[Sequence[Event]],
        render: Render,
        *,
        origin: str = "trigger",
        position: Any = None,
    ) -> list[Fired]:
        """Record events and start one run per group of new ones, once (`store/events.py`)."""
        return event_rows.fire(
            self.engine, deployment, trigger, groups, render, origin=origin, position=position
        )

    def known_events(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are recorded events."""
        return event_rows.known(self.engine, ids)

    def trigger_positions(
        self, deployment_ids: Sequence[str]
    ) -> dict[tuple[str, str], TriggerPosition]:
        return event_rows.positions(self.engine, deployment_ids)

    def events(
        self, deployment: str | None = None, run_id: str | None = None, limit: int = 50
    ) -> list[EventRecord]:
        """Recorded events, newest first; of one deployment (`flow/name` or a unique name)."""
        if limit < 1:
            raise StoreError(f"limit must be at least 1, got {limit}")
        if deployment is not None:
            try:
                with self.reader.connect() as conn:
                    deployment = deployment_rows.resolve(conn, deployment)
            except StoreError:
                if "/" not in deployment:
                    raise  # a removed deployment's events are still named by FLOW/NAME

        return event_rows.list_events(self.engine, deployment, run_id, limit)

    def event(self, event_id: str) -> EventRecord | None:
        return event_rows.get_event(self.engine, event_id)

    def ended_runs(
        self, after: float, states: Sequence[str], limit: int = 500
    ) -> list[tuple[str, str, str | None, str, float, str, str | None, str | None]]:
        return event_rows.ended_runs(self.engine, after, states, limit)
