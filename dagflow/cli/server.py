"""`dagflow server start|token`: the REST API and pages over the run history (`dagflow.server`).

The server reads and writes the same database as every other command (`DAGFLOW_DATABASE_URL`,
else `DAGFLOW_HOME/dagflow.db`). FastAPI, uvicorn and Bokeh are imported only when it starts.
"""

from __future__ import annotations

import sys

import click

from dagflow import settings as dagflow_settings


@click.group("server")
def server() -> None:
    """The dagflow server: REST API (/api/v1) and pages to watch and control runs."""


@server.command("start")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=4200,
    show_default=True,
    help="0: any free port.",
)
@click.option(
    "--ssl-certfile", type=click.Path(exists=True, dir_okay=False), help="TLS certificate (PEM)."
)
@click.option(
    "--ssl-keyfile", type=click.Path(exists=True, dir_okay=False), help="TLS private key (PEM)."
)
@click.option("--access-log", is_flag=True, help="Log every request.")
def start(
    host: str, port: int, ssl_certfile: str | None, ssl_keyfile: str | None, access_log: bool
) -> None:
    """Serve the API and the pages until stopped (Ctrl-C).

    Every route but /api/v1/health and static files needs the token: API clients send
    `Authorization: Bearer TOKEN`, browsers sign in on the page with it. The token is
    DAGFLOW_API_TOKEN, else the one in DAGFLOW_HOME/server-token (made on first start).
    """
    from dagflow.server.auth import ServerToken
    from dagflow.server.serve import ServeOptions, serve

    def announce(url: str, token: ServerToken) -> None:
        click.echo(f"dagflow server at {url}  (API {url}/api/v1, docs {url}/api/v1/docs)")
        if token.created:
            click.echo(f"token: {token.value}")
            click.echo(f"  new; kept in {token.source} (mode 600). Sign in with it, or open")
            click.echo(f"  {url}/login#token={token.value}")
        else:
            click.echo(f"token: from {token.source} (`dagflow server token` prints it)")
        click.echo(f"remote CLI: DAGFLOW_API_URL={url} DAGFLOW_API_TOKEN=<token> dagflow runs ls")
        sys.stdout.flush()  # before uvicorn takes over, even when stdout is a pipe

    options = ServeOptions(host, port, ssl_certfile, ssl_keyfile, access_log)
    serve(options, dagflow_settings.load(), announce)


@server.command("token")
def token() -> None:
    """Print the server's token (made and kept in DAGFLOW_HOME/server-token if missing)."""
    from dagflow.server.auth import load_token

    found = load_token(dagflow_settings.load())
    click.echo(found.value)
