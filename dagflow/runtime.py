"""The one place that wires a run together: settings, cluster, run history, runner.

`run_flow` reads the settings once, picks the cluster (the caller's, then `DAGFLOW_CLUSTER`, then
the flow's `cluster=`, then `local`), opens the run history on this process (the driver; workers
never open it), and hands the runner its sinks: the store's writer and whatever the caller adds
(the CLI's progress display). A flow called inside another flow's body runs as a subflow: a run of
its own, linked to its parent, on the parent's cluster, recorded by the parent's sinks.
The run reads its variables and secrets from the history once, here (`Store.run_config`).
`resume` reopens a recorded run and runs its flow again under the same id, reusing every task
whose result was persisted. Nothing here or anywhere else registers itself at import time.
A worker process that imports the user's script again never starts a run (`clusters.mainguard`).

The engine, the store and the clusters are imported when a run starts, so `import dagflow` and
commands that only read the history stay quick.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from dagflow import settings as dagflow_settings
from dagflow.core.context import current_flow_run
from dagflow.core.flow import FlowDefinition
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.errors import DefinitionError

if TYPE_CHECKING:
    from dagflow.core.history import RunHistory
    from dagflow.core.reuse import ResumePlan
    from dagflow.engine.sinks import EventSink
    from dagflow.store import Store

log = logging.getLogger(__name__)
Flow = FlowDefinition[..., Any]
T = TypeVar("T")


def call_flow(
    flow: Flow, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any = None
) -> FlowRun:
    """A flow called like a function: validate the arguments, then run it (here or as a subflow).

    A subflow (called inside a flow's body) first waits for its `wait_for` futures, and gets the
    values of the parent's futures among its arguments, as a task would.
    """
    if current_flow_run.get() is not None:
        args, kwargs = _subflow_arguments(flow, args, kwargs, wait_for)
    elif wait_for:
        raise DefinitionError(
            f"flow {flow.name!r}: wait_for= names task futures, so it works for a subflow "
            "called inside a flow"
        )
    return run_flow(flow, flow.bind_parameters(args, kwargs))


def _subflow_arguments(
    flow: Flow, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A subflow's arguments with the parent's futures replaced by their values (an
    `allow_failure` one by its value or its error), after its `wait_for` futures finished."""
    from dagflow.core.graph import TaskFuture, allow_failure, futures_in
    from dagflow.core.walk import transform
    from dagflow.errors import UpstreamFailed

    def value_of(future: TaskFuture[Any], allowed: bool) -> Any:
        try:
            return future.result()
        except Exception as exc:
            if allowed:
                return exc
            raise UpstreamFailed(
                f"subflow {flow.name!r} did not run: upstream {future.task_name!r} "
                f"({future.logical_key}) failed: {type(exc).__name__}: {exc}",
                task=future.task_name,
                cause=future.logical_key,
            ) from exc

    def leaf(value: Any) -> Any:
        if type(value) is TaskFuture:
            return value_of(value, False)
        if type(value) is allow_failure:
            return transform(
                value.future, lambda v: value_of(v, True) if type(v) is TaskFuture else v
            )
        return value

    if wait_for is not None:
        items = [wait_for] if type(wait_for) is TaskFuture else wait_for
        for item in items:
            allowed = type(item) is allow_failure
            for future in futures_in(item):
                future.wait()
                if not allowed:
                    value_of(future, False)
    return transform(args, leaf), transform(kwargs, leaf)


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
        parent.check_running()  # a timed-out or cancelled parent starts nothing more
        runner = FlowRunner(
            flow,
            params,
            parent.cluster,
            settings=parent.settings,
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
    from dagflow.clusters.mainguard import refuse_in_worker_bootstrap

    refuse_in_worker_bootstrap(flow.name)  # a worker process importing the user's script
    current = dagflow_settings.load()
    # The run history opens while the cluster starts (its import alone is a fifth of a second,
    # a cluster start takes seconds): a store that cannot record still stops the run before
    # anything is submitted.
    opening = _Background(default_store, current)
    handle = get_cluster(resolve_name(cluster, flow.options.cluster, current.cluster))
    store = opening.result()
    runner = FlowRunner(
        flow,
        params,
        handle,
        settings=current,
        sinks=[store.writer, *sinks],
        run_id=run_id,
        resume=resume,
        resumed_from=resumed_from,
        scheduled=scheduled,
        config=store.run_config(),
        pauses=store,
    )
    from dagflow.cancels import watcher

    watcher.watch(store, runner)
    try:
        flow_run = runner.run()
    finally:
        watcher.forget(runner.run_id)
    # A live run keeps its latest log records in memory; all of them are in the run history.
    flow_run._log_loader = lambda: store.logs(flow_run.id)
    return flow_run


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
    validated again. A task call's persisted result is reused only when the call is the same
    work as before (its identity: the task's code and inputs); every other call runs again, its
    attempts continuing from the earlier ones. `force` reuses persisted results by key whatever
    changed.
    """
    from dagflow.core.reuse import plan_from

    store = default_store()
    reopened = store.reopen_run(run_ref)
    if reopened.flow_name != flow.name and not force:
        raise DefinitionError(
            f"run {reopened.run_id} is a run of flow {reopened.flow_name!r}, not {flow.name!r}"
            " (--force to resume it with this flow anyway)"
        )
    outcomes = store.load_task_outcomes(reopened.run_id).values()
    plan = plan_from(
        (
            (o.key, o.state, o.attempts, o.result_location, o.result_serializer, o.result_identity)
            for o in outcomes
        ),
        force=force,
    )
    params = flow.validate_parameters(reopened.parameters)
    _remove_partial_results(reopened.run_id)
    return run_flow(
        flow,
        params,
        cluster=cluster,
        sinks=sinks,
        run_id=reopened.run_id,
        resume=plan,
        resumed_from=(reopened.state, reopened.attempts),
    )


class _Background(Generic[T]):
    """`fn(*args)` in a thread of its own; `result()` waits for it and returns or raises."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> None:
        try:
            self._outcome.append((True, fn(*args)))
        except BaseException as exc:
            self._outcome.append((False, exc))

    def result(self) -> T:
        self._thread.join()
        ok, value = self._outcome[0]
        if not ok:
            raise value
        return value


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


def run_history(current: dagflow_settings.Settings | None = None) -> RunHistory:
    """Where recorded runs are read from: a dagflow server (`DAGFLOW_API_URL`), else the database.

    The `runs` and `logs` commands read through this, so they work the same on the database and
    through a server (with `DAGFLOW_API_TOKEN`), and never ask which one it is.
    """
    current = current if current is not None else dagflow_settings.load()
    if current.api_url is not None:
        from dagflow.client import Client

        return Client(current.api_url, current.api_token)
    return default_store(current)


def get_flow_run(ref: str) -> FlowRun:
    """A recorded flow run by id or unique id prefix, with task runs and `logs()`.

    A run that has ended has its half-written result files (a worker killed mid-write) removed.
    """
    run = default_store().get_flow_run(ref)
    if run.state.is_final:
        _remove_partial_results(run.id)
    return _with_result_loader(run)


def _with_result_loader(run: FlowRun) -> FlowRun:
    """`run.result()` reads its persisted return value (a flow with `persist_results=True`)."""
    if run.result_location:
        from dagflow.engine.results import ResultStorage

        run._result_loader = ResultStorage(dagflow_settings.load().results_url).read_location
    return run


def _remove_partial_results(run_id: str) -> None:
    from dagflow.engine.results import ResultStorage

    try:
        ResultStorage(dagflow_settings.load().results_url).remove_partial(run_id)
    except Exception:  # cleaning up is a courtesy: it never stops a resume or a read
        log.debug("could not look for partial results of %s", run_id, exc_info=True)


def list_flow_runs(
    flow: str | None = None, state: StateType | str | None = None, limit: int = 50
) -> list[FlowRun]:
    """Recorded flow runs, newest first."""
    return [_with_result_loader(r) for r in default_store().list_flow_runs(flow, state, limit)]
