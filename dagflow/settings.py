"""Every `DAGFLOW_*` environment variable: read here, checked here, and nowhere else.

- `DAGFLOW_HOME` (`~/.dagflow`): dagflow's directory: the SQLite history, results, profiles.
- `DAGFLOW_DATABASE_URL` (the SQLite file `DAGFLOW_HOME/dagflow.db`): the run history database,
  an SQLAlchemy URL (`postgresql+psycopg://user@host/db`, `sqlite:///path`).
- `DAGFLOW_CLUSTER` (the flow's `cluster=`, else `local`): the cluster when the CLI names none.
- `DAGFLOW_RESULTS_URL` (`DAGFLOW_HOME/results`): persisted results and cache entries (fsspec).
- `DAGFLOW_HEARTBEAT_SECONDS` (5): how often a driver refreshes its active runs' heartbeat.
- `DAGFLOW_CRASH_AFTER_SECONDS` (30): an active run whose heartbeat is older is CRASHED.
- `DAGFLOW_LATE_AFTER_SECONDS` (60): a scheduled run not started this long after its tick is late.

`load()` reads them all at once, when a run starts or a command runs, and returns a frozen
`Settings`; the parts of dagflow receive what they need from it (a worker never reads the
environment: the driver sends it the results URL with the task). A bad value raises one
`SettingsError` naming the variable. Nothing is cached, so a test or `dagflow.testing.local_flows`
that changes the environment is followed by the next run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dagflow.errors import SettingsError

HOME = "DAGFLOW_HOME"
DATABASE_URL = "DAGFLOW_DATABASE_URL"
CLUSTER = "DAGFLOW_CLUSTER"
RESULTS_URL = "DAGFLOW_RESULTS_URL"
HEARTBEAT_SECONDS = "DAGFLOW_HEARTBEAT_SECONDS"
CRASH_AFTER_SECONDS = "DAGFLOW_CRASH_AFTER_SECONDS"
LATE_AFTER_SECONDS = "DAGFLOW_LATE_AFTER_SECONDS"


@dataclass(frozen=True, slots=True)
class Settings:
    """dagflow's configuration as the environment gave it at one moment."""

    home: Path
    database_url: str | None  # None: the SQLite file under `home`
    cluster: str | None
    results_url: str
    heartbeat_seconds: float = 5.0
    crash_after_seconds: float = 30.0
    late_after_seconds: float = 60.0

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
        late_after_seconds=_seconds(env, LATE_AFTER_SECONDS, 60.0),
    )


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


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
