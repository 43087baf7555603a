"""`POST /api/v1/webhooks/{name}`: a webhook call, checked by its HMAC signature (no token).

The HTTP side only: the check and the recording are `dagflow.scheduler.webhooks.receive`. A
caller's mistake is one line in `detail` with its status (401 signature, 404 unknown webhook,
409 paused, 413/400 body, 503 no secret configured); 202 says which runs the call created.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from dagflow.scheduler import webhooks
from dagflow.server.context import get_store
from dagflow.store import Store

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/{name}", status_code=202)
async def deliver(name: str, request: Request, store: Store = Depends(get_store)) -> Any:
    """Record a webhook call as an event of each deployment with the webhook `name`, starting
    its run (signed: `X-Dagflow-Signature: sha256=HMAC-SHA256(secret, body)`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > webhooks.MAX_BODY:
        detail = f"webhook {name!r}: body larger than {webhooks.MAX_BODY} bytes"
        return JSONResponse({"detail": detail}, status_code=413)
    body = await request.body()
    try:
        delivered = await run_in_threadpool(
            webhooks.receive,
            store,
            name,
            body,
            request.headers.get(webhooks.HEADER),
            request.headers.get(webhooks.DELIVERY),
            request.headers.get("content-type", ""),
        )
    except webhooks.WebhookError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    return {
        "deliveries": [
            {"deployment": d.deployment, "event_id": d.event_id, "run_id": d.run_id}
            for d in delivered
        ]
    }
