"""The store's configuration: the database URL (parsed and checked) and its heartbeat timing.

The values come from `dagflow.settings` (`DAGFLOW_DATABASE_URL`, else the SQLite file
`DAGFLOW_HOME/dagflow.db`; `DAGFLOW_HEARTBEAT_SECONDS`, `DAGFLOW_CRASH_AFTER_SECONDS`); this module
turns the URL text into an SQLAlchemy `URL`, refusing what dagflow cannot use with one
`StoreError` line, and never shows a password in a message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dagflow import settings as dagflow_settings
from dagflow.errors import StoreError
from dagflow.settings import DATABASE_URL, Settings


@dataclass(frozen=True, slots=True)
class StoreSettings:
    """The store's configuration as read from the environment at one moment."""

    url: URL
    heartbeat_seconds: float
    crash_after_seconds: float
    late_after_seconds: float = 60.0
    # where secrets' keys come from (`secretkey.py`): DAGFLOW_SECRET_KEY, else this file
    key_file: Path | None = None
    secret_key: str | None = field(default=None, repr=False)


def database_url(settings: Settings, url: str | URL | None = None) -> URL:
    """The URL to use: `url` if given, else `DAGFLOW_DATABASE_URL`, else the SQLite file."""
    source = "the database URL"
    if url is None:
        url = settings.database_url
        source = DATABASE_URL
    if url is None:
        settings.ensure_home()
        return URL.create("sqlite", database=str(settings.sqlite_path))
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


def load_settings(url: str | URL | None = None, settings: Settings | None = None) -> StoreSettings:
    """The store's settings from dagflow's (read from the environment unless given)."""
    current = settings if settings is not None else dagflow_settings.load()
    return StoreSettings(
        url=database_url(current, url),
        heartbeat_seconds=current.heartbeat_seconds,
        crash_after_seconds=current.crash_after_seconds,
        late_after_seconds=current.late_after_seconds,
        key_file=current.home / "secret-key",
        secret_key=current.secret_key,
    )


def display_url(url: URL) -> str:
    """The URL without its password, for messages."""
    return url.render_as_string(hide_password=True)
