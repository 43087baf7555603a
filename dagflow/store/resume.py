"""What the runtime asks of the store to resume a run.

- `reopen_run(ref)`: the run to resume must exist and have ended FAILED, TIMED_OUT, CRASHED or
  CANCELLED (crash detection runs first, so a run whose driver died qualifies); returns its flow
  and recorded parameters.
- `load_task_outcomes(run_id)`: every task run's state, result location and cache key, by key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from dagflow.core.states import StateType
from dagflow.errors import StateConflict
from dagflow.store.encoding import restore_parameters
from dagflow.store.reader import Reader
from dagflow.store.schema import flow_runs, task_runs

RESUMABLE = (StateType.FAILED, StateType.TIMED_OUT, StateType.CRASHED, StateType.CANCELLED)


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How one task run of an earlier attempt ended (`key` is its Dask key's text)."""

    key: str
    name: str
    map_index: int | None
    state: StateType
    attempts: int
    result_location: str | None
    result_serializer: str | None
    result_identity: str | None
    cache_key: str | None


@dataclass(frozen=True, slots=True)
class ReopenedRun:
    """A run that may be resumed: its id, flow and the parameters it was started with."""

    run_id: str
    flow_name: str
    flow_version: str | None
    parameters: dict[str, Any]
    state: StateType
    attempts: int


def reopen_run(reader: Reader, ref: str) -> ReopenedRun:
    run_id = reader.resolve(ref)
    reader.detect_crashes([run_id])
    with reader.connect() as conn:
        row = conn.execute(select(flow_runs).where(flow_runs.c.id == run_id)).one()
    state = StateType(row.state)
    if state not in RESUMABLE:
        allowed = ", ".join(s.value for s in RESUMABLE)
        raise StateConflict(
            f"flow run {run_id} is {state}; only a run that ended {allowed} resumes"
        )
    parameters, lost = restore_parameters(row.parameters)
    if lost:
        names = ", ".join(repr(name) for name in lost)
        raise StateConflict(
            f"flow run {run_id} cannot be resumed: parameter(s) {names} were recorded only as"
            " their repr (not JSON data), so the values it started with are gone"
        )
    return ReopenedRun(run_id, row.flow_name, row.flow_version, parameters, state, row.attempts)


def load_task_outcomes(reader: Reader, run_id: str) -> dict[str, TaskOutcome]:
    query = select(
        task_runs.c.task_key,
        task_runs.c.task_name,
        task_runs.c.map_index,
        task_runs.c.state,
        task_runs.c.attempts,
        task_runs.c.result_location,
        task_runs.c.result_serializer,
        task_runs.c.result_identity,
        task_runs.c.cache_key,
    ).where(task_runs.c.run_id == run_id)
    with reader.connect() as conn:
        return {
            row.task_key: TaskOutcome(
                row.task_key,
                row.task_name,
                row.map_index,
                StateType(row.state),
                row.attempts,
                row.result_location,
                row.result_serializer,
                row.result_identity,
                row.cache_key,
            )
            for row in conn.execute(query)
        }
