"""Where the run history lives and how often the driver proves it is alive.

Owns the environment variables of the store:

- `DAGFLOW_DATABASE_URL`: an SQLAlchemy URL (`postgresql+psycopg://user@host/db`, `sqlite:///path`);
  when unset, the SQLite file `DAGFLOW_HOME/dagflow.db`.
- `DAGFLOW_HOME`: dagflow's directory, `~/.dagflow` by default; created on first use.
- `DAGFLOW_HEARTBEAT_SECONDS` (default 5): how often the writer refreshes its running runs.
- `DAGFLOW_CRASH_AFTER_SECONDS` (default 30): a run whose heartbeat is older than this while it is
  still active is taken to have lost its driver (CRASHED).

A bad value is a `StoreError` naming the variable, never a traceback.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dagflow.errors import StoreError

ENV_HOME = "DAGFLOW_HOME"
ENV_DATABASE_URL = "DAGFLOW_DATABASE_URL"
ENV_HEARTBEAT = "DAGFLOW_HEARTBEAT_SECONDS"
ENV_CRASH_AFTER = "DAGFLOW_CRASH_AFTER_SECONDS"

DEFAULT_HEARTBEAT_SECONDS = 5.0
DEFAULT_CRASH_AFTER_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The store's configuration as read from the environment at one moment."""

    url: URL
    heartbeat_seconds: float
    crash_after_seconds: float


def dagflow_home() -> Path:
    """`DAGFLOW_HOME` (or `~/.dagflow`), created if missing."""
    home = Path(os.environ.get(ENV_HOME) or Path.home() / ".dagflow").expanduser()
    try:
        home.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create {ENV_HOME} directory {home}: {exc.strerror}") from None
    return home


def database_url(url: str | URL | None = None) -> URL:
    """The URL to use: `url` if given, else `DAGFLOW_DATABASE_URL`, else the SQLite file."""
    source = "the database URL"
    if url is None:
        url = os.environ.get(ENV_DATABASE_URL) or None
        source = ENV_DATABASE_URL
    if url is None:
        return URL.create("sqlite", database=str(dagflow_home() / "dagflow.db"))
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{source} {str(url)!r} is not a database URL") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise StoreError(f"{source}: unsupported database {backend!r} (use sqlite or postgresql)")
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    return parsed


def _seconds(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise StoreError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def load_settings(url: str | URL | None = None) -> StoreSettings:
    """Read the store's settings from the environment (and `url`, if given)."""
    return StoreSettings(
        url=database_url(url),
        heartbeat_seconds=_seconds(ENV_HEARTBEAT, DEFAULT_HEARTBEAT_SECONDS),
        crash_after_seconds=_seconds(ENV_CRASH_AFTER, DEFAULT_CRASH_AFTER_SECONDS),
    )


def display_url(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)
