"""`/api/v1/flows` (the flows the history knows) and `/api/v1/health` (no token needed)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

import dagflow
from dagflow.server.context import get_store, require_token
from dagflow.server.models import FlowOut, Health
from dagflow.store import Store

router = APIRouter(tags=["flows"])
health_router = APIRouter(tags=["health"])


@router.get("/flows", response_model=list[FlowOut], dependencies=[Depends(require_token)])
def list_flows(store: Store = Depends(get_store)) -> list[FlowOut]:
    """Every flow with recorded runs: its last version, how many runs, when it last ran."""
    return [FlowOut.of(f) for f in store.list_flows()]


@health_router.get("/health", response_model=Health)
async def health(store: Store = Depends(get_store)) -> Health:
    """Whether the server and its database answer (no token needed)."""
    await run_in_threadpool(store.ping)
    return Health(status="ok", version=dagflow.__version__)
