"""Every `DAGFLOW_*` environment variable: read here, checked here, and nowhere else.

- `DAGFLOW_HOME` (`~/.dagflow`): dagflow's directory: the SQLite history, results, profiles.
- `DAGFLOW_DATABASE_URL` (the SQLite file `DAGFLOW_HOME/dagflow.db`): the run history database,
  an SQLAlchemy URL (`postgresql+psycopg://user@host/db`, `sqlite:///path`).
- `DAGFLOW_CLUSTER` (the flow's `cluster=`, else `local`): the cluster when the CLI names none.
- `DAGFLOW_RESULTS_URL` (`DAGFLOW_HOME/results`): persisted results and cache entries (fsspec).
- `DAGFLOW_HEARTBEAT_SECONDS` (5): how often a driver refreshes its active runs' heartbeat.
- `DAGFLOW_CRASH_AFTER_SECONDS` (30): an active run whose heartbeat is older is CRASHED.
- `DAGFLOW_LOG_MAX_RECORD` (65536): characters kept of one log record (the rest is cut, marked).
- `DAGFLOW_LOG_MAX_PER_TASK` (4194304): characters of log a task execution may send; further
  records are dropped and counted.
- `DAGFLOW_API_URL` (none): a dagflow server (`http://host:4200`); when set, `dagflow runs` and
  `dagflow logs` read through it instead of the database, and the Dask dashboard's `/dagflow`
  page links to its run pages.
- `DAGFLOW_API_TOKEN` (none): the server's bearer token. `dagflow server start` uses it, else the
  token kept in `DAGFLOW_HOME/server-token` (made on first start); clients send it.
- `DAGFLOW_LATE_AFTER_SECONDS` (60): a scheduled run not started this long after its tick is late.
- `DAGFLOW_SECRET_KEY` (none): the Fernet key(s) secrets are encrypted with, comma-separated, the
  first encrypting; without it, the key file `DAGFLOW_HOME/secret-key` (made on first use, 0600).

`load()` reads them all at once, when a run starts or a command runs, and returns a frozen
`Settings`; the parts of dagflow receive what they need from it (a worker never reads the
environment: the driver sends it the results URL with the task). A bad value raises one
`SettingsError` naming the variable. Nothing is cached, so a test or `dagflow.testing.local_flows`
that changes the environment is followed by the next run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dagflow.errors import SettingsError

HOME = "DAGFLOW_HOME"
DATABASE_URL = "DAGFLOW_DATABASE_URL"
CLUSTER = "DAGFLOW_CLUSTER"
RESULTS_URL = "DAGFLOW_RESULTS_URL"
HEARTBEAT_SECONDS = "DAGFLOW_HEARTBEAT_SECONDS"
CRASH_AFTER_SECONDS = "DAGFLOW_CRASH_AFTER_SECONDS"
LOG_MAX_RECORD = "DAGFLOW_LOG_MAX_RECORD"
LOG_MAX_PER_TASK = "DAGFLOW_LOG_MAX_PER_TASK"
API_URL = "DAGFLOW_API_URL"
API_TOKEN = "DAGFLOW_API_TOKEN"
LATE_AFTER_SECONDS = "DAGFLOW_LATE_AFTER_SECONDS"
SECRET_KEY = "DAGFLOW_SECRET_KEY"


@dataclass(frozen=True, slots=True)
class Settings:
    """dagflow's configuration as the environment gave it at one moment."""

    home: Path
    database_url: str | None  # None: the SQLite file under `home`
    cluster: str | None
    results_url: str
    heartbeat_seconds: float = 5.0
    crash_after_seconds: float = 30.0
    log_max_record: int = 64 * 1024
    log_max_per_task: int = 4 * 1024 * 1024
    api_url: str | None = None  # a dagflow server to read through, without a trailing slash
    api_token: str | None = None
    late_after_seconds: float = 60.0
    secret_key: str | None = field(default=None, repr=False)  # see `dagflow.store.secretkey`

    @property
    def sqlite_path(self) -> Path:
        """The default database file (used when `database_url` is None)."""
        return self.home / "dagflow.db"

    def ensure_home(self) -> Path:
        """Create `home` if missing (only where something is about to be written there)."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(
                f"cannot create {HOME} directory {self.home}: {exc.strerror}"
            ) from None
        return self.home


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and check every variable from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ
    home = Path(_text(env, HOME) or Path.home() / ".dagflow").expanduser()
    results = _text(env, RESULTS_URL)
    return Settings(
        home=home,
        database_url=_text(env, DATABASE_URL),
        cluster=_text(env, CLUSTER),
        results_url=results.rstrip("/") if results else (home / "results").as_uri(),
        heartbeat_seconds=_seconds(env, HEARTBEAT_SECONDS, 5.0),
        crash_after_seconds=_seconds(env, CRASH_AFTER_SECONDS, 30.0),
        log_max_record=_count(env, LOG_MAX_RECORD, 64 * 1024, minimum=100),
        log_max_per_task=_count(env, LOG_MAX_PER_TASK, 4 * 1024 * 1024, minimum=100),
        api_url=_http_url(env, API_URL),
        api_token=_text(env, API_TOKEN),
        late_after_seconds=_seconds(env, LATE_AFTER_SECONDS, 60.0),
        secret_key=_text(env, SECRET_KEY),
    )


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _http_url(env: Mapping[str, str], name: str) -> str | None:
    raw = _text(env, name)
    if raw is None:
        return None
    scheme, sep, rest = raw.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise SettingsError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise SettingsError(f"{name} must be a positive number of seconds, got {raw!r}")
    return value


def _count(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = -1
    if value < minimum:
        raise SettingsError(f"{name} must be a whole number >= {minimum}, got {raw!r}")
    return value
