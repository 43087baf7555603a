"""`/api/v1/deployments`: list, show, pause, resume, and run a deployment now.

A deployment is named in paths as on the command line: `FLOW/NAME`, or a NAME unique across
flows (unknown or ambiguous: 404). Creating a run validates its parameters exactly as `dagflow
deployments run` does (`scheduler.manual.create_run`, with the flow loaded from the
deployment's entrypoint): a bad field is 422 naming it, with the CLI's line as `message`. The run
is created SCHEDULED for a `dagflow serve` process serving the deployment, which starts it.

The resume of an ended run (`POST /api/v1/runs/{ref}/resume`) is in `routes/runs.py`, beside
cancel.
"""

from __future__ import annotations

import json
import time

from fastapi import APIRouter, Body, Depends, Path

from dagflow.server.context import get_store, require_token
from dagflow.server.deployment_models import (
    DeploymentDetail,
    DeploymentOut,
    RunCreatedOut,
    RunRequestIn,
)
from dagflow.store import Store

router = APIRouter(
    prefix="/deployments", tags=["deployments"], dependencies=[Depends(require_token)]
)

DeploymentRef = Path(
    pattern=r"^[^\x00-\x1f]{1,512}$",
    description="FLOW/NAME, or a NAME unique across flows",
)


def detail_of(store: Store, ref: str) -> DeploymentDetail:
    from dagflow.server.deployments import parameter_schema

    info = store.deployments([ref])[0]
    found = parameter_schema(info.deployment)
    return DeploymentDetail(
        **DeploymentOut.fields_of(info, time.time()),
        parameter_schema=found.schema,
        schema_error=found.error,
    )


@router.get("", response_model=list[DeploymentOut], summary="Registered deployments")
def list_deployments(store: Store = Depends(get_store)) -> list[DeploymentOut]:
    now = time.time()
    return [DeploymentOut.of(info, now) for info in store.deployments()]


@router.get(
    "/{ref:path}",
    response_model=DeploymentDetail,
    summary="One deployment: schedules, next ticks, parameter schema",
)
def get_deployment(ref: str = DeploymentRef, store: Store = Depends(get_store)) -> DeploymentDetail:
    return detail_of(store, ref)


@router.post("/{ref:path}/pause", response_model=DeploymentOut, summary="Pause a deployment")
def pause(ref: str = DeploymentRef, store: Store = Depends(get_store)) -> DeploymentOut:
    """No new runs on its schedules; its upcoming scheduled runs are dropped."""
    full = store.set_paused(ref, True)
    return DeploymentOut.of(store.deployments([full])[0], time.time())


@router.post("/{ref:path}/resume", response_model=DeploymentOut, summary="Resume a deployment")
def resume(ref: str = DeploymentRef, store: Store = Depends(get_store)) -> DeploymentOut:
    """Runs are created on its schedules again, from now on."""
    full = store.set_paused(ref, False)
    return DeploymentOut.of(store.deployments([full])[0], time.time())


@router.post(
    "/{ref:path}/runs",
    response_model=RunCreatedOut,
    status_code=201,
    summary="Run a deployment now, with parameters",
)
def create_run(
    ref: str = DeploymentRef,
    body: RunRequestIn = Body(default_factory=RunRequestIn),
    store: Store = Depends(get_store),
) -> RunCreatedOut:
    """Validated as `dagflow deployments run` validates them; a serving process starts it."""
    from dagflow.scheduler.manual import create_run as create
    from dagflow.server.deployments import flow_of

    dep = store.deployment(ref)
    params_json = json.dumps(body.parameters) if body.parameters else None
    run_id = create(
        store, dep, flow_of(dep), body.params, params_json, requested_by="the server's API"
    )
    run = store.run_summary(run_id).run
    return RunCreatedOut(
        id=run_id, deployment=dep.full_name, state=run.state, parameters=run.parameters
    )
