"""`/api/v1/runs`: list runs, read one run's parts, follow its logs, cancel or resume it.

A run is named in paths by its id or a unique prefix (as on the command line): an unknown or
ambiguous one is 404. Listings are newest first with an opaque cursor (`next_cursor`); task runs
page by offset within one run; history and logs by the row id after which to read (`after`), which
is also how a client follows a live run: `GET .../logs?after=N&wait=10` answers as soon as there
are new records or the run has ended, or after `wait` seconds with none.

Resume is queued: a deployment's run that ended FAILED, TIMED_OUT, CRASHED or CANCELLED is marked
for the `dagflow serve` process serving its deployment, which resumes it under its id (reusing
persisted task results) as `dagflow resume` would; a run of no deployment is 409, naming that
command.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool

from dagflow.core.states import StateType
from dagflow.server.context import get_store, require_token
from dagflow.server.errors import bad_input
from dagflow.server.models import (
    CancelOut,
    ErrorOut,
    HistoryOut,
    LogLevel,
    LogOut,
    LogPageOut,
    ParametersOut,
    ResumeOut,
    RunDetail,
    RunOut,
    RunPageOut,
    StepOut,
    TaskRunOut,
    TaskRunPageOut,
)
from dagflow.store import RunFilter, Store
from dagflow.store.browse import Cursor

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[Depends(require_token)])

RunRef = Path(
    pattern=r"^[0-9A-Za-z_.-]{1,64}$",
    description="a run id, or a unique prefix of one",
)
FAILURE_STATES = tuple(sorted(s for s in StateType if s.is_failure))
MAX_WAIT = 30.0
POLL_SECONDS = 0.5


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(cursor)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> Cursor:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        created, run_id = json.loads(raw)
        if not isinstance(run_id, str) or not isinstance(created, (int, float)):
            raise ValueError(text)
    except (ValueError, TypeError, binascii.Error):
        bad_input("query", "cursor", "not a cursor this server gave (use next_cursor as given)")
    return float(created), run_id


def _seconds(t: datetime | None) -> float | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


@router.get("", response_model=RunPageOut, summary="List runs, newest first")
def list_runs(
    flow: str | None = Query(None, max_length=255, description="only runs of this flow"),
    state: list[StateType] = Query([], description="only runs in these states (repeatable)"),
    since: datetime | None = Query(
        None, description="created at or after (ISO 8601; UTC if naive)"
    ),
    until: datetime | None = Query(None, description="created before (ISO 8601; UTC if naive)"),
    deployment: str | None = Query(
        None, max_length=512, description="only runs of this deployment (FLOW/NAME)"
    ),
    cursor: str | None = Query(
        None, max_length=200, description="`next_cursor` of the page before"
    ),
    limit: int = Query(50, ge=1, le=500),
    store: Store = Depends(get_store),
) -> RunPageOut:
    where = RunFilter(flow, tuple(state), _seconds(since), _seconds(until), deployment)
    page = store.runs_page(where, decode_cursor(cursor) if cursor else None, limit)
    return RunPageOut(
        runs=[RunOut.of(s) for s in page.runs],
        next_cursor=encode_cursor(page.next_cursor) if page.next_cursor else None,
    )


@router.get("/{ref}", response_model=RunDetail, summary="One run, with its own state history")
def get_run(ref: str = RunRef, store: Store = Depends(get_store)) -> RunDetail:
    return RunDetail.of(store.run_summary(ref))


@router.get("/{ref}/task-runs", response_model=TaskRunPageOut, summary="A run's task runs")
def task_runs(
    ref: str = RunRef,
    state: list[StateType] = Query([], description="only task runs in these states"),
    name: str | None = Query(None, max_length=255, description="only task runs of this task"),
    offset: int = Query(0, ge=0),
    limit: int = Query(100, ge=1, le=1000),
    store: Store = Depends(get_store),
) -> TaskRunPageOut:
    run_id = store.resolve(ref)
    page = store.task_run_page(run_id, tuple(state), name, offset, limit)
    return TaskRunPageOut(
        task_runs=[TaskRunOut.of(t) for t in page.task_runs],
        total=page.total,
        offset=offset,
        limit=limit,
    )


@router.get("/{ref}/history", response_model=HistoryOut, summary="Every transition of a run")
def history(
    ref: str = RunRef,
    task: str | None = Query(
        None, max_length=255, description="only this task run (task[i] or its Dask key)"
    ),
    after: int = Query(0, ge=0, description="read after this step id"),
    limit: int = Query(500, ge=1, le=5000),
    store: Store = Depends(get_store),
) -> HistoryOut:
    run_id = store.resolve(ref)
    steps = store.history_page(run_id, task, after, limit)
    return HistoryOut(
        steps=[StepOut.of(s) for s in steps], next_after=steps[-1].id if steps else after
    )


@router.get("/{ref}/logs", response_model=LogPageOut, summary="A run's log records")
async def logs(
    ref: str = RunRef,
    level: LogLevel | None = Query(None, description="only records at this level or above"),
    q: str | None = Query(None, max_length=200, description="only records containing this text"),
    task: str | None = Query(None, max_length=255, description="only this task (name or key)"),
    after: int = Query(0, ge=0, description="read after this record id"),
    limit: int = Query(500, ge=1, le=5000),
    wait: float = Query(0, ge=0, le=MAX_WAIT, description="seconds to wait for new records"),
    store: Store = Depends(get_store),
) -> LogPageOut:
    run_id = await run_in_threadpool(store.resolve, ref)
    deadline = time.monotonic() + wait
    min_level = level.number if level is not None else 0
    while True:
        state = await run_in_threadpool(store.run_state, run_id)
        found = await run_in_threadpool(
            lambda: store.log_page(
                run_id, min_level=min_level, search=q, task=task, after=after, limit=limit
            )
        )
        done = state is None or state.is_final
        if found or done or time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    return LogPageOut(
        logs=[LogOut.of(i, ev) for i, ev in found],
        next_after=found[-1][0] if found else after,
        run_state=state or StateType.PENDING,
        done=done and len(found) < limit,
    )


@router.get("/{ref}/error", response_model=ErrorOut, summary="Why a run failed")
def error(
    ref: str = RunRef, limit: int = Query(20, ge=1, le=500), store: Store = Depends(get_store)
) -> ErrorOut:
    summary = store.run_summary(ref)
    run = summary.run
    failed = store.task_run_page(run.id, FAILURE_STATES, None, 0, limit)
    return ErrorOut(
        state=run.state,
        error_type=run.error_type,
        error=run.error,
        failed_tasks=[TaskRunOut.of(t) for t in failed.task_runs],
        failed_total=failed.total,
    )


@router.get("/{ref}/parameters", response_model=ParametersOut, summary="A run's parameters")
def parameters(ref: str = RunRef, store: Store = Depends(get_store)) -> ParametersOut:
    return ParametersOut(parameters=store.run_summary(ref).run.parameters)


@router.post("/{ref}/cancel", response_model=CancelOut, summary="Cancel a run")
def cancel(ref: str = RunRef, store: Store = Depends(get_store)) -> CancelOut:
    """A scheduled run is cancelled at once; an active one is marked CANCELLING for its driver."""
    run_id, state = store.request_cancel(ref, "cancel requested through the server")
    return CancelOut(id=run_id, state=state)


@router.post("/{ref}/resume", response_model=ResumeOut, summary="Resume an ended run")
def resume(ref: str = RunRef, store: Store = Depends(get_store)) -> ResumeOut:
    """Queue a deployment's FAILED (or CRASHED, TIMED_OUT, CANCELLED) run for its serving
    process to resume; it keeps its state until that process starts it."""
    run_id, state, asked = store.request_resume(ref)
    return ResumeOut(
        id=run_id, state=state, resume_requested=datetime.fromtimestamp(asked, timezone.utc)
    )
