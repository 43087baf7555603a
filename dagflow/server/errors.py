"""How errors become HTTP answers, in one place: one status per error family, one JSON shape.

| raised | status |
|---|---|
| a request that fails validation (FastAPI's, or `bad_input`) | 422, `detail` naming each field |
| `NotFound` (unknown or ambiguous id) | 404 |
| `StateConflict` (cancel a finished run, ...) | 409 |
| `ParameterError` | 422, with one entry per bad parameter |
| `DeploymentError` about a run's parameters | 422, per field, and `message` (the CLI's line) |
| `UsageError`, `SettingsError`, `DefinitionError`, other `DeploymentError`s | 400 |
| any other `StoreError` (the database failed) | 503 |
| `SecretError` (the server has no key, or the wrong one, for its secrets) | 503 |

A client's mistake is answered and logged as one line at most, never with a traceback; only a bug
in dagflow (an unexpected exception) is logged with its traceback, as a 500. The body is always
`{"detail": ...}`: a string, or for 422 a list of `{"loc", "msg", "type"}` (a deployment run's
parameters add `message`, the one line `dagflow deployments run` prints for the same mistake).
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from dagflow.errors import (
    DagflowError,
    DefinitionError,
    DeploymentError,
    NotFound,
    ParameterError,
    SecretError,
    SettingsError,
    StateConflict,
    StoreError,
    UsageError,
)

log = logging.getLogger(__name__)


def bad_input(where: str, field: str, message: str) -> NoReturn:
    """Refuse a request naming its field, as FastAPI does (`where`: query, path or body)."""
    raise RequestValidationError([{"loc": (where, field), "msg": message, "type": "value_error"}])


def status_of(exc: DagflowError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, StateConflict):
        return 409
    if isinstance(exc, ParameterError) or (isinstance(exc, DeploymentError) and exc.errors):
        return 422
    if isinstance(exc, (UsageError, SettingsError, DefinitionError, DeploymentError)):
        return 400
    if isinstance(exc, (StoreError, SecretError)):
        return 503
    return 500


def body_of(exc: DagflowError) -> dict[str, Any]:
    if isinstance(exc, (ParameterError, DeploymentError)) and exc.errors:
        detail = [
            {
                "loc": ["body", "parameters", *[str(p) for p in err.get("loc", ())]],
                "msg": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
            for err in exc.errors
        ]
        if isinstance(exc, DeploymentError):
            return {"detail": detail, "message": str(exc)}
        return {"detail": detail}
    return {"detail": str(exc)}


async def _dagflow_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DagflowError)
    status = status_of(exc)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(body_of(exc), status_code=status)


def install(app: FastAPI) -> None:
    """Add the handlers to `app` (FastAPI answers its own validation errors with 422)."""
    app.add_exception_handler(DagflowError, _dagflow_error)
