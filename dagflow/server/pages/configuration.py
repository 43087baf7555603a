"""The Configuration page (`/config`): variables with their values, secrets by name only,
concurrency limits. Read-only: they are set with the CLI or the API (docs/variables.md,
docs/secrets.md, docs/concurrency.md). No page ever shows a secret's value.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from dagflow.server.context import get_store, require_session
from dagflow.server.pages.render import page
from dagflow.store import Store

router = APIRouter(include_in_schema=False)
SHOWN_CHARS = 500  # of a variable's JSON on the page


@router.get("/config", dependencies=[Depends(require_session)])
def configuration_page(store: Store = Depends(get_store)) -> Response:
    variables = []
    for v in store.variables():
        text = json.dumps(v.value, ensure_ascii=False)
        if len(text) > SHOWN_CHARS:
            text = text[: SHOWN_CHARS - 1] + "…"
        variables.append((v.name, text, v.updated))
    return page(
        "config.html",
        variables=variables,
        secrets=store.secrets(),
        limits=store.concurrency_limits(),
    )
