"""The approval page of a paused run: its reason, a form built from the input's JSON schema,
and Approve / Reject buttons (`/runs/{ref}/approve`).

The form is rendered on the server from the schema the run's pause recorded (a text field per
property: text, numbers as typed, so the flow's own model validates them and a refusal names
the field; a checkbox for a boolean; a choice for an enum; JSON for anything else).
`assets/approve.js` posts the answer to the API (`/api/v1/runs/{ref}/approve|reject`) with the
session cookie, shows a refusal's errors, and goes back to the run's page once it is answered.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import Response

from dagflow.server.context import get_store, require_session
from dagflow.server.pages.render import page
from dagflow.store import Store

router = APIRouter(include_in_schema=False)
RunRef = Path(pattern=r"^[0-9A-Za-z_.-]{1,64}$")
SIMPLE = ("string", "integer", "number", "boolean")


@dataclass(frozen=True, slots=True)
class Field:
    """One input of the approval form."""

    name: str
    title: str
    kind: str  # string | integer | number | boolean | choice | json
    required: bool
    default: str  # as the field shows it
    description: str
    choices: tuple[str, ...] = ()


def fields_of(schema: dict[str, Any] | None) -> list[Field]:
    """The form's fields, from a pydantic model's JSON schema."""
    if not schema:
        return []
    defs = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        ref = prop.get("$ref") or (prop.get("allOf") or [{}])[0].get("$ref")
        target = defs.get(ref.rsplit("/", 1)[-1], {}) if isinstance(ref, str) else prop
        kind = target.get("type") if target.get("type") in SIMPLE else "json"
        choices: tuple[str, ...] = ()
        if "enum" in target:
            kind, choices = "choice", tuple(str(c) for c in target["enum"])
        default = prop.get("default")
        if default is None:
            shown = ""
        elif kind == "json":
            shown = json.dumps(default)
        else:
            shown = str(default).lower() if kind == "boolean" else str(default)
        out.append(
            Field(
                name=name,
                title=str(prop.get("title") or name),
                kind=kind,
                required=name in required,
                default=shown,
                description=str(prop.get("description") or ""),
                choices=choices,
            )
        )
    return out


@router.get("/runs/{ref}/approve", dependencies=[Depends(require_session)])
def approval_page(ref: str = RunRef, store: Store = Depends(get_store)) -> Response:
    summary = store.run_summary(ref)
    pause = store.last_pause(summary.run.id)
    return page(
        "approve.html",
        run=summary.run,
        pause=pause,
        open=pause is not None and pause.status.is_open and summary.run.state.value == "PAUSED",
        fields=fields_of(pause.input_schema if pause is not None else None),
    )
