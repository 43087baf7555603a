"""The engine's entry points: run a flow (top-level or as a subflow), run a task in-process.

`run_flow` validates parameters before anything runs or is recorded, picks the cluster (CLI flag,
`DAGFLOW_CLUSTER`, the flow's `cluster=`, then `local`), and hands over to a `FlowRunner`. A flow
called inside another flow's body is a subflow: a run of its own, linked to its parent, on the
parent's cluster. A task called outside any flow runs right here with its retry policy.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from dagflow.clusters import get_cluster, resolve_name
from dagflow.core.context import current_flow_run
from dagflow.core.definitions import Flow, Task
from dagflow.core.runs import FlowRun
from dagflow.core.states import StateType
from dagflow.engine import printing
from dagflow.engine.compiler import ResumePlan
from dagflow.engine.runner import FlowRunner
from dagflow.engine.sinks import EventSink
from dagflow.engine.wrapper import _run_guarded

log = logging.getLogger("dagflow.runs")

# Set by the CLI (or a caller) for the runs it starts: which cluster, which extra sinks.
run_overrides: ContextVar[dict[str, Any] | None] = ContextVar("dagflow_overrides", default=None)


class LocalEngine:
    """Runs flows from this process on a Dask cluster."""

    def run_flow(
        self, flow: Flow[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> FlowRun:
        params = flow.validate_parameters(flow.parameters.bind(args, kwargs))
        return run_flow_with(flow, params)

    def resume_flow(self, flow: Flow[..., Any], run_id: str, *, force: bool = False) -> FlowRun:
        from dagflow.orchestrator import resume

        return resume(flow, run_id, force=force)

    def run_task_inline(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        options = task.options
        policy = options.retry
        attempt = 1
        while True:
            try:
                if options.timeout is None:
                    with printing.capture(False):
                        return task.fn(*args, **kwargs)
                return _run_guarded(task.fn, args, kwargs, options)
            except Exception as exc:
                if not policy.should_retry(exc, attempt - 1):
                    raise
                delay = policy.delay(attempt, random.random())
                log.info(
                    "task %r failed (%s); retry %d/%d in %.2fs",
                    task.name,
                    exc,
                    attempt,
                    policy.retries,
                    delay,
                )
                time.sleep(delay)
                attempt += 1


def run_flow_with(
    flow: Flow[..., Any],
    params: dict[str, Any],
    *,
    cluster: str | None = None,
    sinks: Sequence[EventSink] = (),
    run_id: str | None = None,
    resume: ResumePlan | None = None,
    resumed_from: tuple[StateType, int] | None = None,
) -> FlowRun:
    """Run `flow` with already validated `params`; the CLI and the API come through here."""
    parent_ctx = current_flow_run.get()
    overrides = run_overrides.get() or {}
    if parent_ctx is not None:
        parent: FlowRunner = parent_ctx.runner
        runner = FlowRunner(
            flow, params, parent.cluster, parent=parent, sinks=parent.own_sinks, run_id=run_id
        )
        with parent.lock:
            parent.children.append(runner)
        flow_run = runner.run()
        parent.flow_run.subflow_runs.append(flow_run)
        return flow_run
    name = resolve_name(cluster or overrides.get("cluster"), flow.options.cluster)
    handle = get_cluster(name)
    runner = FlowRunner(
        flow,
        params,
        handle,
        sinks=[*overrides.get("sinks", ()), *sinks],
        run_id=run_id,
        resume=resume,
        resumed_from=resumed_from,
    )
    return runner.run()
