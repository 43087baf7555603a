"""The HTML pages: sign-in, Runs, one Run, the API docs; and the parts their script refreshes.

Each page is linkable (its filters are in the URL) and rendered whole on the server, so it reads
right without waiting for any script. While something on it is live (an active run), `app.js`
reloads the page's parts (`/parts/...`, HTML rendered by the same templates) every couple of
seconds and re-embeds its charts; a part answers `X-Dagflow-Live: 0` once nothing is live, and
the refreshing stops. Pages need the session cookie (`/login` sets it); without it they answer
401 with the sign-in form.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from dagflow.core.history import RunSummary
from dagflow.core.states import StateType
from dagflow.server.auth import COOKIE
from dagflow.server.context import context, get_store, require_session
from dagflow.server.errors import bad_input
from dagflow.server.models import LogLevel
from dagflow.server.pages import charts
from dagflow.server.pages.render import page
from dagflow.server.routes.runs import FAILURE_STATES, decode_cursor, encode_cursor
from dagflow.store import RunFilter, Store
from dagflow.store.resume import RESUMABLE

router = APIRouter(include_in_schema=False)
session = [Depends(require_session)]

RunRef = Path(pattern=r"^[0-9A-Za-z_.-]{1,64}$")
RUNS_PER_PAGE = 50
TASKS_PER_PAGE = 100
LOGS_SHOWN = 1000
LIVE = {"X-Dagflow-Live": "1"}
DONE = {"X-Dagflow-Live": "0"}


def live_header(live: bool) -> dict[str, str]:
    return LIVE if live else DONE


def run_live(store: Store, run_id: str, state: StateType | None) -> bool:
    """Whether a run's page keeps refreshing: it is active, or queued to be resumed."""
    if state is not None and not state.is_final:
        return True
    return state in RESUMABLE and store.resume_requested(run_id) is not None


def form_states(values: list[str]) -> list[StateType]:
    """States from a page's form, where "" means any; 422 naming `state` for anything else."""
    out = []
    for value in values:
        if not value:
            continue
        try:
            out.append(StateType(value.strip().upper()))
        except ValueError:
            bad_input("query", "state", f"unknown state {value!r}")
    return out


def form_level(value: str | None) -> LogLevel | None:
    """A log level from a page's form, where "" means all."""
    if not value:
        return None
    try:
        return LogLevel(value.strip().upper())
    except ValueError:
        bad_input("query", "level", f"unknown log level {value!r}")


# ---------------------------------------------------------------------- signing in


def login_page(next_url: str = "/runs", error: str | None = None, status: int = 401) -> Response:
    return page("login.html", status, next_url=next_url, error=error)


def _local(next_url: str | None) -> str:
    """Only a path on this server is a place to go back to after signing in."""
    if not next_url or not next_url.startswith("/") or next_url.startswith("//"):
        return "/runs"
    return next_url


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/runs", status_code=303)


@router.get("/login")
def login_form(next: str = Query("/runs", max_length=2000)) -> Response:
    return login_page(_local(next), status=200)


@router.post("/login")
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"), max_num_fields=4)
    token = (form.get("token") or [""])[0].strip()
    next_url = _local((form.get("next") or ["/runs"])[0])
    auth = context(request).auth
    if not token or not auth.token_ok(token):
        return login_page(next_url, "That is not this server's token.")
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        COOKIE,
        auth.session,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


# ---------------------------------------------------------------------- runs


def _runs_values(
    store: Store,
    flow: str | None,
    state: list[StateType],
    cursor: str | None,
    deployment: str | None = None,
) -> dict[str, Any]:
    where = RunFilter(flow or None, tuple(state), deployment=deployment or None)
    result = store.runs_page(where, decode_cursor(cursor) if cursor else None, RUNS_PER_PAGE)
    query: list[tuple[str, str]] = [("flow", flow)] if flow else []
    query += [("deployment", deployment)] if deployment else []
    query += [("state", s.value) for s in state]
    older = None
    if result.next_cursor is not None:
        older = "/runs?" + urlencode([*query, ("cursor", encode_cursor(result.next_cursor))])
    return {
        "runs": result.runs,
        "flow": flow or "",
        "deployment": deployment or "",
        "selected": {s.value for s in state},
        "query": urlencode([*query, ("cursor", cursor)] if cursor else query),
        "older": older,
        # the newest page is always live (new runs appear on it); older ones while a run runs
        "live": cursor is None or any(not s.run.state.is_final for s in result.runs),
        "flows": [f.name for f in store.list_flows()],
    }


@router.get("/runs", dependencies=session)
def runs_page(
    flow: str | None = Query(None, max_length=255),
    state: list[str] = Query([]),
    cursor: str | None = Query(None, max_length=200),
    deployment: str | None = Query(None, max_length=512),
    store: Store = Depends(get_store),
) -> Response:
    values = _runs_values(store, flow, form_states(state), cursor, deployment)
    return page("runs.html", **values)


@router.get("/parts/runs", dependencies=session)
def runs_part(
    flow: str | None = Query(None, max_length=255),
    state: list[str] = Query([]),
    cursor: str | None = Query(None, max_length=200),
    deployment: str | None = Query(None, max_length=512),
    store: Store = Depends(get_store),
) -> Response:
    values = _runs_values(store, flow, form_states(state), cursor, deployment)
    return page("runs_table.html", headers=live_header(values["live"]), **values)


# ---------------------------------------------------------------------- one run


def _header_values(store: Store, ref: str) -> dict[str, Any]:
    summary: RunSummary = store.run_summary(ref)
    run = summary.run
    failed = (
        store.task_run_page(run.id, FAILURE_STATES, None, 0, 5) if summary.failed_tasks else None
    )
    # a deployment's ended run is resumed by its serving process (`dagflow resume` otherwise)
    resumable = run.deployment is not None and run.state in RESUMABLE
    resume_requested = store.resume_requested(run.id) if resumable else None
    return {
        "resumable": resumable,
        "resume_requested": resume_requested,
        "s": summary,
        "run": run,
        "failed": failed.task_runs if failed else [],
        "failed_total": failed.total if failed else 0,
        "live": not run.state.is_final or (resumable and resume_requested is not None),
        "cancellable": run.state
        in (
            StateType.SCHEDULED,
            StateType.PENDING,
            StateType.RUNNING,
            StateType.RETRYING,
            StateType.PAUSED,
        ),
    }


def _tasks_values(store: Store, run_id: str, state: list[StateType], offset: int) -> dict[str, Any]:
    found = store.task_run_page(run_id, tuple(state), None, offset, TASKS_PER_PAGE)
    return {
        "tasks": found.task_runs,
        "total": found.total,
        "offset": offset,
        "per_page": TASKS_PER_PAGE,
        "task_state": {s.value for s in state},
        "task_query": urlencode([("state", s.value) for s in state]),
    }


def _logs_values(
    store: Store, run_id: str, level: LogLevel | None, q: str | None
) -> dict[str, Any]:
    found = store.log_page(
        run_id, min_level=level.number if level else 0, search=q or None, limit=LOGS_SHOWN + 1
    )
    query = [("level", level.value)] if level else []
    query += [("q", q)] if q else []
    return {
        "logs": found[:LOGS_SHOWN],
        "more_logs": len(found) > LOGS_SHOWN,
        "level": level.value if level else "",
        "q": q or "",
        "log_query": urlencode(query),
        "LEVELS": [lv.value for lv in LogLevel],
    }


@router.get("/runs/{ref}", dependencies=session)
def run_page(
    ref: str = RunRef,
    state: list[str] = Query([]),
    offset: int = Query(0, ge=0),
    level: str | None = Query(None, max_length=20),
    q: str | None = Query(None, max_length=200),
    store: Store = Depends(get_store),
) -> Response:
    values = _header_values(store, ref)
    run_id = values["run"].id
    values.update(_tasks_values(store, run_id, form_states(state), offset))
    values.update(_logs_values(store, run_id, form_level(level), q))
    return page("run.html", **values)


@router.get("/runs/{ref}/parts/header", dependencies=session)
def run_header_part(ref: str = RunRef, store: Store = Depends(get_store)) -> Response:
    values = _header_values(store, ref)
    return page("run_header.html", headers=live_header(values["live"]), **values)


@router.get("/runs/{ref}/parts/tasks", dependencies=session)
def run_tasks_part(
    ref: str = RunRef,
    state: list[str] = Query([]),
    offset: int = Query(0, ge=0),
    store: Store = Depends(get_store),
) -> Response:
    run_id = store.resolve(ref)
    values = _tasks_values(store, run_id, form_states(state), offset)
    live = store.run_state(run_id)
    return page(
        "run_tasks.html",
        headers=live_header(run_live(store, run_id, live)),
        run_id=run_id,
        **values,
    )


@router.get("/runs/{ref}/parts/logs", dependencies=session)
def run_logs_part(
    ref: str = RunRef,
    level: str | None = Query(None, max_length=20),
    q: str | None = Query(None, max_length=200),
    store: Store = Depends(get_store),
) -> Response:
    run_id = store.resolve(ref)
    values = _logs_values(store, run_id, form_level(level), q)
    live = store.run_state(run_id)
    return page(
        "run_logs.html",
        headers=live_header(run_live(store, run_id, live)),
        run_id=run_id,
        **values,
    )


@router.get("/runs/{ref}/charts/gantt", dependencies=session)
async def gantt_chart(ref: str = RunRef, store: Store = Depends(get_store)) -> JSONResponse:
    item, live = await run_in_threadpool(charts.gantt, store, ref)
    return JSONResponse(item, headers=live_header(live or await _resuming(store, ref)))


@router.get("/runs/{ref}/charts/graph", dependencies=session)
async def graph_chart(ref: str = RunRef, store: Store = Depends(get_store)) -> JSONResponse:
    item, live = await run_in_threadpool(charts.task_graph, store, ref)
    return JSONResponse(item, headers=live_header(live or await _resuming(store, ref)))


async def _resuming(store: Store, ref: str) -> bool:
    def check() -> bool:
        return store.resume_requested(store.resolve(ref)) is not None

    return await run_in_threadpool(check)


# ---------------------------------------------------------------------- API docs


@router.get("/api/v1/docs", dependencies=session)
def api_docs() -> Response:
    return page("docs.html")
