"""What every route reaches through the app: the store, the token check, the server's options.

`create_app` puts one `ServerContext` in `app.state.dagflow`; routes get it (and the store) through
the FastAPI dependencies below, so nothing is global and two apps can serve two databases in one
process (as the tests do). `require_token` is the API's guard (401 with `WWW-Authenticate:
Bearer`); pages use `require_session`, which answers a browser with the sign-in page instead.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBearer

from dagflow.server.auth import Auth
from dagflow.store import Store

# Declares the scheme in OpenAPI (the docs' "Authorize" button); the check itself is `Auth`.
bearer_scheme = HTTPBearer(auto_error=False, description="the server's token")


@dataclass(frozen=True, slots=True)
class ServerContext:
    store: Store
    auth: Auth
    dashboard_url: str | None = None  # where this server's runs are linked from, if known


class LoginRequired(Exception):
    """A page was asked for without a session: answer with the sign-in page (401)."""


def context(request: Request) -> ServerContext:
    ctx: ServerContext = request.app.state.dagflow
    return ctx


def get_store(request: Request) -> Store:
    return context(request).store


def require_token(request: Request, _: object = Depends(bearer_scheme)) -> None:
    if not context(request).auth.allows(request):
        raise HTTPException(
            401,
            "a valid token is required (Authorization: Bearer TOKEN)",
            {"WWW-Authenticate": "Bearer"},
        )


def require_session(request: Request) -> None:
    if not context(request).auth.allows(request):
        raise LoginRequired()
