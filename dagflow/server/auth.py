"""Who may use the server: one bearer token, and the session cookie that carries it for pages.

The token is `DAGFLOW_API_TOKEN` when set; otherwise the one kept in `DAGFLOW_HOME/server-token`,
written on first start with mode 0600 (a file others can read is refused). Every request but
health and static assets must carry it:

- API clients send `Authorization: Bearer TOKEN`;
- a browser signs in once on `/login`; the server then sets an HttpOnly, SameSite=Strict cookie
  holding an HMAC of the token (not the token itself), which the pages and their scripts send.
  A request authenticated by that cookie that changes something (POST, ...) must also come from
  the server's own origin (`Origin`/`Sec-Fetch-Site`): a cross-site form cannot cancel a run.

Comparisons are constant-time. Nothing here logs a token.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from dagflow.errors import SettingsError
from dagflow.settings import API_TOKEN, Settings

TOKEN_FILE = "server-token"
COOKIE = "dagflow_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, slots=True)
class ServerToken:
    """The token and where it came from (`created`: written just now, to be shown once)."""

    value: str
    source: str
    created: bool = False


def load_token(settings: Settings) -> ServerToken:
    """The server's token: `DAGFLOW_API_TOKEN`, else the token file (made if missing)."""
    if settings.api_token:
        return ServerToken(settings.api_token, API_TOKEN)
    path = settings.ensure_home() / TOKEN_FILE
    try:
        return ServerToken(_read_token(path), str(path))
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server started at the same moment: use its token
        return ServerToken(_read_token(path), str(path))
    except OSError as exc:
        raise SettingsError(f"cannot write the server token to {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w") as out:
        out.write(value + "\n")
    return ServerToken(value, str(path), created=True)


def _read_token(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SettingsError(
            f"{path} may be read by other users (mode {stat.S_IMODE(mode):o}); "
            f"run chmod 600 {path}, or set {API_TOKEN}"
        )
    value = path.read_text().strip()
    if not value:
        raise SettingsError(f"{path} is empty; delete it to make a new token, or set {API_TOKEN}")
    return value


class Auth:
    """Checks a request's bearer token or session cookie against the server's token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.session = hmac.new(self._token, b"dagflow-session-v1", hashlib.sha256).hexdigest()

    def token_ok(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(), self._token)

    def allows(self, request: Request) -> bool:
        """True when the request carries the token, or a session cookie from our own origin."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value and self.token_ok(value.strip()):
            return True
        cookie = request.cookies.get(COOKIE, "")
        if not cookie or not hmac.compare_digest(cookie.encode(), self.session.encode()):
            return False
        return request.method in SAFE_METHODS or same_origin(request)


def same_origin(request: Request) -> bool:
    """Whether the browser says the request comes from a page of this server."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    return origin.partition("://")[2] == host
