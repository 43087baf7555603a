"""`/api/v1/variables` and `/api/v1/secrets`: configuration, with the token.

Variables are read, set and removed; secrets are set and removed, and listed by name only: no
route answers a secret's value, and a refused body never echoes it (422 without the input).

A name in a path follows `dagflow.core.config.NAME` (422 otherwise); an unknown one is 404. A
value is any JSON (`PUT` body `{"value": ...}`), at most a million characters of it (400).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from dagflow.core.config import MIN_MASKED
from dagflow.server.context import get_store, require_token
from dagflow.server.errors import bad_input
from dagflow.server.models import utc
from dagflow.store import SecretInfo, Store, Variable
from dagflow.store.secrets import MAX_VALUE_CHARS

router = APIRouter(tags=["configuration"], dependencies=[Depends(require_token)])

NamePath = Path(
    pattern=r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$",
    description="a variable's name: a letter or _, then letters, digits, _ . -",
)


class VariableOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    value: Any
    created: datetime | None
    updated: datetime | None

    @classmethod
    def of(cls, v: Variable) -> VariableOut:
        return cls(name=v.name, value=v.value, created=utc(v.created), updated=utc(v.updated))


class VariableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: Any


@router.get("/variables", response_model=list[VariableOut], summary="Every variable, by name")
def list_variables(store: Store = Depends(get_store)) -> list[VariableOut]:
    return [VariableOut.of(v) for v in store.variables()]


@router.get("/variables/{name}", response_model=VariableOut, summary="One variable")
def get_variable(name: str = NamePath, store: Store = Depends(get_store)) -> VariableOut:
    return VariableOut.of(store.variable(name))


@router.put("/variables/{name}", response_model=VariableOut, summary="Set a variable")
def set_variable(
    body: VariableIn, name: str = NamePath, store: Store = Depends(get_store)
) -> VariableOut:
    store.set_variable(name, body.value)
    return VariableOut.of(store.variable(name))


@router.delete("/variables/{name}", status_code=204, summary="Remove a variable")
def remove_variable(name: str = NamePath, store: Store = Depends(get_store)) -> Response:
    store.remove_variable(name)
    return Response(status_code=204)


# ---------------------------------------------------------------------------- secrets
# Write-only: a value goes in (PUT) and is never answered, listed or echoed back.


class SecretOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    created: datetime | None
    updated: datetime | None

    @classmethod
    def of(cls, s: SecretInfo) -> SecretOut:
        return cls(name=s.name, created=utc(s.created), updated=utc(s.updated))


class SecretIn(BaseModel):
    """The body of `PUT /secrets/{name}` (read by hand: FastAPI's 422 would echo the input)."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=MIN_MASKED, max_length=MAX_VALUE_CHARS)


async def secret_value(request: Request) -> str:
    """The value of a `PUT /secrets/{name}` body; a refusal names the field, never the input."""
    try:
        body = json.loads(await request.body())
    except ValueError:
        bad_input("body", "value", "the body is not JSON")
    if not isinstance(body, dict) or set(body) != {"value"}:
        bad_input("body", "value", 'the body must be {"value": "..."} and nothing else')
    value = body["value"]
    if not isinstance(value, str) or not MIN_MASKED <= len(value) <= MAX_VALUE_CHARS:
        bad_input(
            "body",
            "value",
            f"a string of {MIN_MASKED} to {MAX_VALUE_CHARS:,} characters",
        )
    return value


@router.get("/secrets", response_model=list[SecretOut], summary="Every secret's name (no value)")
def list_secrets(store: Store = Depends(get_store)) -> list[SecretOut]:
    return [SecretOut.of(s) for s in store.secrets()]


@router.put(
    "/secrets/{name}",
    status_code=204,
    summary="Set a secret (the value is never answered)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SecretIn.model_json_schema()}},
        }
    },
)
def set_secret(
    name: str = NamePath,
    value: str = Depends(secret_value),
    store: Store = Depends(get_store),
) -> Response:
    store.set_secret(name, value)
    return Response(status_code=204)


@router.delete("/secrets/{name}", status_code=204, summary="Remove a secret")
def remove_secret(name: str = NamePath, store: Store = Depends(get_store)) -> Response:
    store.remove_secret(name)
    return Response(status_code=204)
