"""`create_app(store, token)`: the server's one FastAPI application, API and pages together.

```
/api/v1/...              REST API (routes/), bearer token; /api/v1/openapi.json (token) and
                         /api/v1/docs (Swagger UI, served from the package: no CDN)
/api/v1/health           no token
/login, /runs, /runs/ID  pages (pages/), session cookie
/assets/...              the pages' CSS and JS          } static, no token: nothing in them
/bokeh/static/...        BokehJS, from the bokeh package } comes from the database
```

Every response carries a Content-Security-Policy allowing this origin only, and no inline
script: BokehJS documents arrive as JSON (`bokeh.embed.json_item`) and are embedded by
`assets/app.js`; inline *styles* are allowed because BokehJS writes its own into shadow roots
(measured: nonces cannot cover them). Swagger UI and BokehJS never touch a third-party origin.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import dagflow
from dagflow.server import errors
from dagflow.server.auth import Auth
from dagflow.server.context import LoginRequired, ServerContext, require_token
from dagflow.server.pages import approval, configuration, views
from dagflow.server.pages import deployments as deployment_pages
from dagflow.server.routes import config, deployments, flows, pauses, runs, webhooks
from dagflow.store import Store

log = logging.getLogger(__name__)

API = "/api/v1"
ASSETS = Path(__file__).parent / "assets"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class SecurityHeaders:
    """ASGI middleware: the CSP and its companions on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(store: Store, token: str) -> FastAPI:
    """The application serving `store`'s history to holders of `token`."""
    app = FastAPI(
        title="dagflow",
        version=dagflow.__version__,
        description="The run history of dagflow: flows, runs, task runs, states and logs.",
        openapi_url=None,  # served below, behind the token
        docs_url=None,
        redoc_url=None,
    )
    app.state.dagflow = ServerContext(store=store, auth=Auth(token))
    errors.install(app)
    app.add_exception_handler(LoginRequired, _login_required)

    api = APIRouter(prefix=API)
    api.include_router(flows.health_router)
    api.include_router(flows.router)
    api.include_router(runs.router)
    api.include_router(deployments.router)
    api.include_router(webhooks.router)  # signed by a per-webhook secret, no token

    api.include_router(config.router)
    api.include_router(pauses.router)
    app.include_router(api)

    @app.get(f"{API}/openapi.json", include_in_schema=False, dependencies=[Depends(require_token)])
    def openapi() -> dict[str, Any]:
        return app.openapi()

    app.include_router(views.router)
    app.include_router(deployment_pages.router)

    app.include_router(approval.router)
    app.include_router(configuration.router)
    app.mount("/assets", StaticFiles(directory=ASSETS), name="assets")
    app.mount("/bokeh/static", StaticFiles(directory=_bokehjs()), name="bokehjs")
    app.mount(f"{API}/docs/static", StaticFiles(directory=_swagger_ui()), name="swagger-ui")
    app.add_middleware(SecurityHeaders)
    return app


async def _login_required(request: Request, exc: Exception) -> Response:
    path = request.url.path
    if path.startswith(API) or "/parts/" in path or "/charts/" in path:
        return JSONResponse({"detail": "sign in first"}, status_code=401)
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return views.login_page(next_url)


def _bokehjs() -> str:
    from bokeh.settings import settings

    return str(settings.bokehjs_path())


def _swagger_ui() -> str:
    import fastapi_offline

    return str(Path(fastapi_offline.__file__).parent / "static")
