"""The Deployments pages: the list (schedules in words, next ticks, pause/resume) and one
deployment with its **Run** form, generated from the flow's parameter schema.

The form posts to `/deployments/REF/run` (the session cookie, from this origin only, as every
change). Its fields become `NAME=VALUE` pairs validated by `scheduler.manual.create_run`, the
code `dagflow deployments run` uses: a bad field is shown again beside its input (status 422,
the values typed kept); a good form creates the run and goes to its page (303), where the run
is seen SCHEDULED until a `dagflow serve` process serving the deployment starts it. Pause and
resume are buttons posting to the API (`assets/app.js`); the parts they change are refreshed.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from dagflow.errors import DagflowError, DeploymentError
from dagflow.server.context import get_store, require_session
from dagflow.server.deployment_models import DeploymentOut
from dagflow.server.pages import forms
from dagflow.server.pages.render import page
from dagflow.store import Store

router = APIRouter(include_in_schema=False)
session = [Depends(require_session)]

DeploymentRef = Path(pattern=r"^[^\x00-\x1f]{1,512}$")
MAX_FORM_BYTES = 256 * 1024
DONE = {"X-Dagflow-Live": "0"}


def _list_values(store: Store) -> dict[str, Any]:
    now = time.time()
    return {"deployments": [DeploymentOut.of(i, now) for i in store.deployments()]}


@router.get("/deployments", dependencies=session)
def deployments_page(store: Store = Depends(get_store)) -> Response:
    return page("deployments.html", live=False, **_list_values(store))


@router.get("/parts/deployments", dependencies=session)
def deployments_part(store: Store = Depends(get_store)) -> Response:
    return page("deployments_table.html", headers=DONE, **_list_values(store))


def _detail_values(
    store: Store,
    ref: str,
    values: dict[str, str] | None = None,
    failure: DeploymentError | None = None,
) -> dict[str, Any]:
    """The deployment page's values; with the form shown again when `failure` refused it."""
    from dagflow.server.deployments import parameter_schema

    info = store.deployments([ref])[0]
    dep = info.deployment
    found = parameter_schema(dep)
    names = list((found.schema or {}).get("properties") or {})
    by_field: dict[str, str] = {}
    form_errors: list[str] = []
    if failure is not None:
        by_field, form_errors = forms.errors_by_field(failure.errors, names)
    fields = []
    if found.schema is not None:
        fields = forms.fields_of(found.schema, dep.parameters, values, by_field)
    return {
        "d": DeploymentOut.of(info, time.time()),
        "fields": fields,
        "schema_error": found.error,
        "refused": str(failure) if failure is not None else None,
        "form_errors": form_errors,
    }


@router.get("/deployments/{ref:path}/parts/header", dependencies=session)
def deployment_header_part(ref: str = DeploymentRef, store: Store = Depends(get_store)) -> Response:
    now = time.time()
    d = DeploymentOut.of(store.deployments([ref])[0], now)
    return page("deployment_header.html", headers=DONE, d=d)


@router.get("/deployments/{ref:path}", dependencies=session)
def deployment_page(ref: str = DeploymentRef, store: Store = Depends(get_store)) -> Response:
    return page("deployment.html", live=False, **_detail_values(store, ref))


@router.post("/deployments/{ref:path}/run", dependencies=session)
async def run_form(
    request: Request, ref: str = DeploymentRef, store: Store = Depends(get_store)
) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        failure = DeploymentError(f"the form is larger than {MAX_FORM_BYTES} bytes")
        info = await run_in_threadpool(_detail_values, store, ref, None, failure)
        return page("deployment.html", 413, live=False, **info)
    form = parse_qs(body.decode("utf-8", "replace"), max_num_fields=forms.MAX_FIELDS + 10)
    values = forms.submitted(form)
    try:
        run_id = await run_in_threadpool(_create, store, ref, values)
    except DeploymentError as exc:
        info = await run_in_threadpool(_detail_values, store, ref, values, exc)
        return page("deployment.html", 422 if exc.errors else 400, live=False, **info)
    return RedirectResponse(f"/runs/{run_id}", status_code=303)


def _create(store: Store, ref: str, values: dict[str, str]) -> str:
    from dagflow.scheduler.manual import create_run
    from dagflow.server.deployments import flow_of

    dep = store.deployment(ref)
    try:
        flow = flow_of(dep)
    except DagflowError as exc:  # its file cannot be loaded here: said on the page
        raise DeploymentError(str(exc)) from None
    return create_run(store, dep, flow, forms.pairs_of(values), requested_by="the Run form")
