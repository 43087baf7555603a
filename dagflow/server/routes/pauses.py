"""`/api/v1/runs/{ref}/pause|approve|reject`: a run paused for approval, and its answer.

`GET .../pause` shows the run's last pause: its reason, the JSON schema of the input it asks
for, its deadline and status. `POST .../approve` with `{"input": ...}` answers it; the run's
driver validates the input with the flow's own model, and the route waits for its word (up to
`ANSWER_WAIT` seconds): 200 with the pause APPROVED, or 422 naming the refused fields while the
run stays paused (202 if the driver has not answered yet). `POST .../reject` fails the run.
A run that is not paused is 409.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from dagflow.core.pauses import Pause, PauseStatus
from dagflow.errors import NotFound
from dagflow.server.context import get_store, require_token
from dagflow.server.errors import bad_input
from dagflow.server.models import utc
from dagflow.store import Store

router = APIRouter(prefix="/runs", tags=["runs"], dependencies=[Depends(require_token)])

RunRef = Path(
    pattern=r"^[0-9A-Za-z_.-]{1,64}$",
    description="a run id, or a unique prefix of one",
)
ANSWER_WAIT = 15.0
POLL_SECONDS = 0.2


class PauseOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    number: int
    reason: str
    input_schema: dict[str, Any] | None
    created: datetime | None
    deadline: datetime | None
    status: PauseStatus
    answered_by: str
    error: str = Field(description="why the last input was refused, or why it was rejected")
    decided: datetime | None

    @classmethod
    def of(cls, p: Pause) -> PauseOut:
        return cls(
            run_id=p.run_id,
            number=p.number,
            reason=p.reason,
            input_schema=p.input_schema,
            created=utc(p.created),
            deadline=utc(p.deadline),
            status=p.status,
            answered_by=p.by,
            error=p.error,
            decided=utc(p.decided),
        )


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: Any = Field(None, description="the input the flow asks for (its input_schema)")


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=2000)


@router.get("/{ref}/pause", response_model=PauseOut, summary="A run's last pause for approval")
def get_pause(ref: str = RunRef, store: Store = Depends(get_store)) -> PauseOut:
    found = store.last_pause(ref)
    if found is None:
        raise NotFound(f"flow run {ref!r} never paused for approval")
    return PauseOut.of(found)


@router.post(
    "/{ref}/approve",
    response_model=PauseOut,
    responses={202: {"model": PauseOut}, 409: {}, 422: {}},
    summary="Approve a paused run (its input validated by the flow's model)",
)
async def approve(body: ApproveIn, ref: str = RunRef, store: Store = Depends(get_store)) -> Any:
    pause = await run_in_threadpool(
        store.answer_pause, ref, True, body.input, "the dagflow server", ""
    )
    deadline = time.monotonic() + ANSWER_WAIT
    while pause.status is PauseStatus.SUBMITTED and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        pause = await run_in_threadpool(store.read_pause, pause.run_id, pause.number)
    if pause.status is PauseStatus.WAITING:
        bad_input("body", "input", f"refused: {pause.error}; the run stays paused")
    if pause.status is PauseStatus.SUBMITTED:
        return JSONResponse(PauseOut.of(pause).model_dump(mode="json"), status_code=202)
    return PauseOut.of(pause)


@router.post("/{ref}/reject", response_model=PauseOut, summary="Reject a paused run (it fails)")
def reject(body: RejectIn, ref: str = RunRef, store: Store = Depends(get_store)) -> PauseOut:
    return PauseOut.of(store.answer_pause(ref, False, None, "the dagflow server", body.reason))
