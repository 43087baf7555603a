"""Where the engine meets the store: every run is recorded, and recorded runs can be resumed.

The engine knows nothing of databases; this module registers the default store's batched writer
as a sink for every run, and implements resume: reopen a FAILED, CRASHED or CANCELLED run, rerun
its flow under the same id with its recorded parameters, and let every task whose result was
persisted in an earlier attempt reuse it instead of running again (matched by its key).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dagflow.core.definitions import Flow
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.engine.api import run_flow_with
from dagflow.engine.compiler import ResumePlan, logical_key
from dagflow.engine.sinks import EventSink, add_sink_factory
from dagflow.errors import DefinitionError

_REUSABLE = (StateType.COMPLETED, StateType.CACHED)


def _store_sink() -> EventSink:
    from dagflow.store import default_sink

    return default_sink()


def install() -> None:
    """Record every run in the default store (DAGFLOW_DATABASE_URL or DAGFLOW_HOME/dagflow.db)."""
    add_sink_factory(_store_sink)


def _serializer_of(location: str) -> str:
    return "json" if location.endswith(".json") else "cloudpickle"


def resume(
    flow: Flow[..., Any],
    run_ref: str,
    *,
    force: bool = False,
    cluster: str | None = None,
    sinks: Sequence[EventSink] = (),
) -> FlowRun:
    """Finish a recorded run of `flow` under its id, reusing persisted results."""
    from dagflow.store import default_store

    store = default_store()
    reopened = store.reopen_run(run_ref)
    if reopened.flow_name != flow.name and not force:
        raise DefinitionError(
            f"run {reopened.run_id} is a run of flow {reopened.flow_name!r}, not {flow.name!r}"
        )
    outcomes = store.load_task_outcomes(reopened.run_id)
    reuse: dict[str, tuple[str, str]] = {}
    recorded: dict[str, str] = {}
    for key, outcome in outcomes.items():
        logical = logical_key(key)
        recorded.setdefault(logical, outcome.name)
        if outcome.state in _REUSABLE and outcome.result_location:
            reuse[logical] = (outcome.result_location, _serializer_of(outcome.result_location))
    params = flow.validate_parameters(reopened.parameters)
    plan = ResumePlan(reuse=reuse, recorded=recorded, force=force)
    return run_flow_with(
        flow,
        params,
        cluster=cluster,
        sinks=sinks,
        run_id=reopened.run_id,
        resume=plan,
        resumed_from=(reopened.state, reopened.attempts),
    )
