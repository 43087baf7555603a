"""The one place that wires a run together: settings, cluster, run history, runner.

`run_flow` reads the settings once, picks the cluster (the caller's, then `DAGFLOW_CLUSTER`, then
the flow's `cluster=`, then `local`), opens the run history on this process (the driver; workers
never open it), and hands the runner its sinks: the store's writer and whatever the caller adds
(the CLI's progress display). A flow called inside another flow's body runs as a subflow: a run of
its own, linked to its parent, on the parent's cluster, recorded by the parent's sinks.
`resume` reopens a recorded run and runs its flow again under the same id, reusing every task
whose result was persisted. Nothing here or anywhere else registers itself at import time.

The engine, the store and the clusters are imported when a run starts, so `import dagflow` and
commands that only read the history stay quick.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dagflow import settings as dagflow_settings
from dagflow.core.context import current_flow_run
from dagflow.core.flow import FlowDefinition
from dagflow.core.keys import parse_key, slug_of
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.errors import DefinitionError

if TYPE_CHECKING:
    from dagflow.engine.compiler import ResumePlan
    from dagflow.engine.sinks import EventSink
    from dagflow.store import Store

Flow = FlowDefinition[..., Any]
_REUSABLE = (StateType.COMPLETED, StateType.CACHED)


def call_flow(flow: Flow, args: tuple[Any, ...], kwargs: dict[str, Any]) -> FlowRun:
    """A flow called like a function: validate the arguments, then run it (here or as a subflow)."""
    return run_flow(flow, flow.bind_parameters(args, kwargs))


def run_flow(
    flow: Flow,
    params: dict[str, Any],
    *,
    cluster: str | None = None,
    sinks: Sequence[EventSink] = (),
    run_id: str | None = None,
    resume: ResumePlan | None = None,
    resumed_from: tuple[StateType, int] | None = None,
    scheduled: bool = False,
) -> FlowRun:
    """Run `flow` with already validated `params` to its final state; the CLI comes through here.

    `scheduled`: `run_id` names a deployment's SCHEDULED run (recorded ahead, taken by the
    caller); this run becomes it. A top-level run is watched for cancel requests made from other
    processes (`dagflow runs cancel`), by this process's one watcher thread (`cancels.py`).
    """
    from dagflow.engine.runner import FlowRunner

    parent_ctx = current_flow_run.get()
    if parent_ctx is not None:
        parent: FlowRunner = parent_ctx.runner
        runner = FlowRunner(
            flow,
            params,
            parent.cluster,
            results_url=parent.results_url,
            parent=parent,
            sinks=parent.sinks,
            run_id=run_id,
        )
        with parent.lock:
            parent.children.append(runner)
        flow_run = runner.run()
        parent.flow_run.subflow_runs.append(flow_run)
        return flow_run
    from dagflow.clusters import get_cluster, resolve_name

    current = dagflow_settings.load()
    store = default_store(current)
    handle = get_cluster(resolve_name(cluster, flow.options.cluster, current.cluster))
    runner = FlowRunner(
        flow,
        params,
        handle,
        results_url=current.results_url,
        sinks=[store.writer, *sinks],
        run_id=run_id,
        resume=resume,
        resumed_from=resumed_from,
        scheduled=scheduled,
    )
    from dagflow.cancels import watcher

    watcher.watch(store, runner)
    try:
        return runner.run()
    finally:
        watcher.forget(runner.run_id)


def resume(
    flow: Flow,
    run_ref: str,
    *,
    force: bool = False,
    cluster: str | None = None,
    sinks: Sequence[EventSink] = (),
) -> FlowRun:
    """Finish a recorded run of `flow` under its id, reusing persisted results.

    The run must have ended FAILED, TIMED_OUT, CRASHED or CANCELLED. Its recorded parameters are
    validated again; every task whose result was persisted is matched by its logical key
    (`task[n]`) and reused; a key now held by another task means the flow changed, which is
    refused unless `force`.
    """
    from dagflow.engine.compiler import ResumePlan

    store = default_store()
    reopened = store.reopen_run(run_ref)
    if reopened.flow_name != flow.name and not force:
        raise DefinitionError(
            f"run {reopened.run_id} is a run of flow {reopened.flow_name!r}, not {flow.name!r}"
        )
    reuse: dict[str, dict[int, tuple[str, str]]] = {}
    recorded: dict[str, str] = {}
    for key, outcome in store.load_task_outcomes(reopened.run_id).items():
        name, index = parse_key(key)
        slug = slug_of(name)
        recorded.setdefault(f"{slug}[{index}]", outcome.name)
        if outcome.state in _REUSABLE and outcome.result_location:
            location = outcome.result_location
            serializer = "json" if location.endswith(".json") else "cloudpickle"
            reuse.setdefault(slug, {})[index] = (location, serializer)
    params = flow.validate_parameters(reopened.parameters)
    return run_flow(
        flow,
        params,
        cluster=cluster,
        sinks=sinks,
        run_id=reopened.run_id,
        resume=ResumePlan(reuse=reuse, recorded=recorded, force=force),
        resumed_from=(reopened.state, reopened.attempts),
    )


# ----------------------------------------------------------------------------- the run history

_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def default_store(current: dagflow_settings.Settings | None = None) -> Store:
    """This process's store of the configured database, opened (and upgraded) on first use.

    Kept per URL, so a changed environment (a test, `dagflow.testing.local_flows`) is followed;
    every store opened here is flushed and closed at interpreter exit.
    """
    from dagflow.store import open_store
    from dagflow.store.settings import load_settings

    current = current if current is not None else dagflow_settings.load()
    key = load_settings(settings=current).url.render_as_string(hide_password=False)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            if not _stores:
                import atexit

                atexit.register(close_stores)
            store = _stores[key] = open_store(settings=current)
        return store


def close_stores() -> None:
    """Commit what every open store's writer holds, then close them (also run at exit)."""
    with _stores_lock:
        stores = list(_stores.values())
        _stores.clear()
    for store in stores:
        store.close(timeout=10.0)


def get_flow_run(ref: str) -> FlowRun:
    """A recorded flow run by id or unique id prefix, with task runs and `logs()`."""
    return default_store().get_flow_run(ref)


def list_flow_runs(
    flow: str | None = None, state: StateType | str | None = None, limit: int = 50
) -> list[FlowRun]:
    """Recorded flow runs, newest first."""
    return default_store().list_flow_runs(flow, state, limit)
