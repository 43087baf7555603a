"""The clusters `dagflow cluster start` keeps up, as notes in `$DAGFLOW_HOME/clusters-running/`.

`cluster start PROFILE` writes one small JSON note (the profile's source, the scheduler address,
the dashboard link, its pid) while the cluster is up and removes it when it stops, so that
`cluster info PROFILE` can look at that cluster instead of starting a throwaway one. A note
whose process is gone (killed, machine restarted) is ignored and removed when read.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dagflow import settings

FOLDER = "clusters-running"


@dataclass(frozen=True, slots=True)
class RunningCluster:
    """A cluster a `dagflow cluster start` process keeps up."""

    source: str  # the profile it was started from (`ClusterProfile.source`)
    address: str
    dashboard_link: str | None
    pid: int
    started: float


def _note(source: str) -> Path:
    digest = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()[:16]
    return settings.load().home / FOLDER / f"{digest}.json"


def record(source: str, address: str, dashboard_link: str | None) -> Path:
    """Note that this process keeps the cluster of profile `source` up at `address`."""
    path = _note(source)
    path.parent.mkdir(parents=True, exist_ok=True)
    note = RunningCluster(source, address, dashboard_link, os.getpid(), time.time())
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(note)))
    tmp.replace(path)
    return path


def forget(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def find(source: str) -> RunningCluster | None:
    """The running cluster of profile `source`, if a live `cluster start` process noted one."""
    path = _note(source)
    try:
        note = RunningCluster(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if note.source != source or not _alive(note.pid):
        forget(path)
        return None
    return note


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
