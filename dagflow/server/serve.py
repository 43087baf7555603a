"""Running the server: open the store, load the token, bind, print where it is, serve (uvicorn).

The socket is bound here, before uvicorn starts, so a taken port or a bad address is one line
(`UsageError`, exit 2) instead of uvicorn's log, and port 0 picks a free port that is then
printed. Binding an address other than loopback without TLS works but logs a warning: the token
would cross the network in clear. uvicorn's own options carry TLS (`ssl_certfile`,
`ssl_keyfile`). SIGINT/SIGTERM stop it gracefully (uvicorn's handlers).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from dagflow.errors import UsageError
from dagflow.server.auth import ServerToken, load_token
from dagflow.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4200


@dataclass(frozen=True, slots=True)
class ServeOptions:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    access_log: bool = False

    @property
    def tls(self) -> bool:
        return self.ssl_certfile is not None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or `UsageError` saying why not."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock


def url_of(options: ServeOptions, sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{options.scheme}://{shown}:{port}"


def serve(
    options: ServeOptions, settings: Settings, announce: Callable[[str, ServerToken], None]
) -> None:
    """Serve until stopped; `announce(url, token)` runs once the socket is bound."""
    import uvicorn

    from dagflow.server.app import create_app
    from dagflow.store import open_store

    if options.ssl_keyfile and not options.ssl_certfile:
        raise UsageError("--ssl-keyfile needs --ssl-certfile")
    store = open_store(settings=settings)
    try:
        token = load_token(settings)
        sock = bind(options.host, options.port)
        if not is_loopback(options.host) and not options.tls:
            log.warning(
                "serving on %s without TLS: the token and the run history cross the network "
                "in clear; pass --ssl-certfile/--ssl-keyfile (or bind 127.0.0.1)",
                options.host,
            )
        announce(url_of(options, sock), token)
        config = uvicorn.Config(
            create_app(store, token.value),
            ssl_certfile=options.ssl_certfile,
            ssl_keyfile=options.ssl_keyfile,
            access_log=options.access_log,
            log_level="info",
            lifespan="off",
            server_header=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        store.close()
